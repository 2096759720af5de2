"""Rasterise phantoms into radiograph-like 8-bit images.

Each structure contributes its X-ray path length (the chord through a
cylinder or ellipsoid), so bones show a bright cortex around a darker
medulla and soft tissue rounds off at its edges. Image formation:
``I = bg + gain * (1 - exp(-(mu_soft * T_soft + mu_bone * T_bone)))**gamma``,
then a heel-effect gradient, detector blur and noise. Arrays are indexed
(row, column); geometry in pixels is (column, row) = (x, y) with rows down.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from boneage.preprocess import blur_image
from boneage.synth.anatomy import Hand, build_hand

NONHAND_KINDS = ("blank", "chest", "text", "knee")


class Canvas:
    """Thickness maps (pixels) for bone and soft tissue on a ``shape`` grid."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        self.bone = np.zeros(shape, np.float32)
        self.soft = np.zeros(shape, np.float32)

    def _window(self, x0: float, x1: float, y0: float, y1: float):
        h, w = self.shape
        c0, c1 = max(int(math.floor(x0)), 0), min(int(math.ceil(x1)) + 1, w)
        r0, r1 = max(int(math.floor(y0)), 0), min(int(math.ceil(y1)) + 1, h)
        if c0 >= c1 or r0 >= r1:
            return None
        rr, cc = np.mgrid[r0:r1, c0:c1].astype(np.float32)
        return (slice(r0, r1), slice(c0, c1)), cc + 0.5, rr + 0.5

    def capsule(
        self, p0, p1, hw: float, flare: float = 1.0, medulla: float = 0.0, soft: bool = False
    ) -> None:
        """Add a tube from ``p0`` to ``p1`` (half-width ``hw``, ends flared by ``flare``)."""
        pad = hw * flare + 1
        win = self._window(
            min(p0[0], p1[0]) - pad,
            max(p0[0], p1[0]) + pad,
            min(p0[1], p1[1]) - pad,
            max(p0[1], p1[1]) + pad,
        )
        if win is None:
            return
        sl, x, y = win
        d = np.subtract(p1, p0)
        length = max(float(np.hypot(*d)), 1e-6)
        u = d / length
        along = (x - p0[0]) * u[0] + (y - p0[1]) * u[1]
        across = -(x - p0[0]) * u[1] + (y - p0[1]) * u[0]
        t = np.clip(along / length, 0.0, 1.0)
        outside = np.where(along < 0, -along, np.maximum(along - length, 0.0))
        r2 = across**2 + outside**2
        w = hw * (1.0 + (flare - 1.0) * (2.0 * t - 1.0) ** 4)
        chord = 2.0 * np.sqrt(np.maximum(w**2 - r2, 0.0))
        if medulla > 0:
            chord -= 1.1 * np.sqrt(np.maximum((medulla * w) ** 2 - r2, 0.0))
        if soft:
            np.maximum(self.soft[sl], chord, out=self.soft[sl])
        else:
            self.bone[sl] += chord

    def ellipse(self, center, half_axes, angle: float, density: float = 1.0) -> None:
        """Add an ossification centre (ellipsoid; ``angle`` from +y towards +x, image y up)."""
        ax, ay = half_axes
        pad = max(ax, ay) + 1
        win = self._window(center[0] - pad, center[0] + pad, center[1] - pad, center[1] + pad)
        if win is None or ax <= 0 or ay <= 0:
            return
        sl, x, y = win
        # The along-axis direction in image coordinates (rows point down).
        ux, uy = math.sin(angle), -math.cos(angle)
        dx, dy = x - center[0], y - center[1]
        a = dx * ux + dy * uy
        b = -dx * uy + dy * ux
        r2 = (b / ax) ** 2 + (a / ay) ** 2
        depth = min(ax, ay)
        chord = 2.0 * depth * np.sqrt(np.maximum(1.0 - r2, 0.0))
        chord -= 0.5 * depth * np.sqrt(np.maximum(1.0 - r2 / 0.5, 0.0))  # trabecular centre
        self.bone[sl] += density * chord

    def polygon(self, points, thickness: float, blur: float) -> None:
        """Add a soft-tissue slab with rounded (blurred) edges."""
        mask = Image.new("L", (self.shape[1], self.shape[0]), 0)
        ImageDraw.Draw(mask).polygon([tuple(p) for p in points], fill=255)
        slab = blur_image(np.asarray(mask, np.float32) / 255.0, blur) * thickness
        np.maximum(self.soft, slab, out=self.soft)


def _frame(rng: np.random.Generator) -> tuple[int, int]:
    """Image size (rows, cols): mostly portrait, varied sizes and aspect ratios."""
    rows = int(rng.uniform(400, 760))
    aspect = rng.uniform(1.0, 1.45) if rng.random() < 0.06 else rng.uniform(0.62, 1.0)
    return rows, int(rows * aspect)


def expose(canvas: Canvas, px_per_mm: float, rng: np.random.Generator) -> np.ndarray:
    """Turn thickness maps into an 8-bit radiograph with varied exposure and noise."""
    mu_soft, mu_bone = rng.uniform(0.014, 0.024), rng.uniform(0.09, 0.14)
    att = (mu_soft * canvas.soft + mu_bone * canvas.bone) / px_per_mm
    signal = (1.0 - np.exp(-att)) ** rng.uniform(0.8, 1.25)
    bg, gain = rng.uniform(0.1, 0.32), rng.uniform(0.75, 1.05)
    img = bg + gain * (1.0 - bg) * signal
    rows = np.linspace(-0.5, 0.5, img.shape[0], dtype=np.float32)[:, None]
    img = img * (1.0 + rng.uniform(-0.15, 0.15) * rows)  # heel effect
    img = blur_image(img.astype(np.float32), rng.uniform(0.4, 1.2))
    img = img + rng.normal(0.0, rng.uniform(0.006, 0.025), img.shape)
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _marker(img: np.ndarray, rng: np.random.Generator) -> None:
    """Burn a lead 'L' side marker into a random corner, as on many films."""
    h, w = img.shape
    size = int(min(h, w) * rng.uniform(0.05, 0.08))
    r = int(rng.uniform(0.03, 0.1) * h) if rng.random() < 0.5 else h - size - int(0.05 * h)
    c = int(rng.uniform(0.03, 0.12) * w)
    stroke = max(2, size // 5)
    img[r : r + size, c : c + stroke] = 245
    img[r + size - stroke : r + size, c : c + int(size * 0.7)] = 245


def collimator_shadow(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A collimator blade's shadow across the film from the bottom, left or right (not
    over the fingertips): 12-30 % deep, slightly tilted, unexposed so bright, soft-edged."""
    rows, cols = img.shape
    side = int(rng.choice([1, 2, 3]))
    depth = rng.uniform(0.12, 0.3)
    yy, xx = np.mgrid[:rows, :cols]
    across = {1: 1 - yy / rows, 2: xx / cols, 3: 1 - xx / cols}[side]
    along = (xx / cols) if side == 1 else (yy / rows)
    band = np.clip((depth + rng.uniform(-0.08, 0.08) * along - across) * 60, 0, 1)
    out = img.astype(np.float32) * (1 - band) + rng.uniform(180, 235) * band
    return np.clip(out, 0, 255).astype(np.uint8)


def render_hand(
    bone_age_months: float,
    male: bool,
    rng: np.random.Generator,
    spread: float | None = None,
    collimated: bool = False,
) -> np.ndarray:
    """One left-hand radiograph (uint8, shape (rows, cols)) at the given bone age.

    ``spread``: how far the fingers fan out (1 open, 0 straight, below 0 held
    together; default: drawn from 0.3-1.2); ``collimated``: with a collimator's
    shadow across one side (:func:`collimator_shadow`).
    """
    hand = build_hand(bone_age_months, male, rng, spread)
    rows, cols = _frame(rng)
    xmin, xmax, ymin, ymax = hand.extent
    # Films are collimated to the hand: it fills most of the frame, with jitter.
    fill = rng.uniform(0.78, 1.0)
    px_per_mm = fill * min(rows / (ymax - ymin), cols / (xmax - xmin))
    theta = math.radians(rng.uniform(-20.0, 20.0))
    centre = np.array([(xmin + xmax) / 2, (ymin + ymax) / 2])
    shift = np.array([rng.uniform(-0.08, 0.08) * cols, rng.uniform(-0.08, 0.08) * rows])
    cos, sin = math.cos(theta), math.sin(theta)

    def to_px(p) -> tuple[float, float]:
        v = np.subtract(p, centre)
        vx, vy = cos * v[0] - sin * v[1], sin * v[0] + cos * v[1]
        return (cols / 2 + shift[0] + px_per_mm * vx, rows / 2 + shift[1] - px_per_mm * vy)

    canvas = Canvas((rows, cols))
    canvas.polygon(
        [to_px(p) for p in hand.palm],
        24.0 * px_per_mm * _soft_scale(hand),
        blur=5.0 * px_per_mm * _soft_scale(hand),
    )
    for p0, p1, hw in hand.soft_capsules:
        canvas.capsule(to_px(p0), to_px(p1), hw * px_per_mm, soft=True)
    for s in hand.shafts:
        canvas.capsule(to_px(s.p0), to_px(s.p1), s.half_width * px_per_mm, s.flare, s.medulla)
    for e in hand.centres:
        canvas.ellipse(
            to_px(e.center),
            (e.half_axes[0] * px_per_mm, e.half_axes[1] * px_per_mm),
            e.angle + theta,
            e.density,
        )
    img = expose(canvas, px_per_mm, rng)
    if rng.random() < 0.5:
        _marker(img, rng)
    return collimator_shadow(img, rng) if collimated else img


def _soft_scale(hand: Hand) -> float:
    """Soft-tissue thickness scales with hand size (the extent's height, ~255 mm adult)."""
    return (hand.extent[3] - hand.extent[2]) / 255.0


def render_nonhand(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A film that is not a hand: ``blank``, ``chest``, ``text`` page or ``knee``."""
    rows, cols = _frame(rng)
    if kind == "text":
        img = np.full((rows, cols), rng.uniform(0.8, 0.95), np.float32)
        y = int(rows * 0.08)
        while y < rows * 0.9:
            if rng.random() > 0.15:
                x1 = int(cols * rng.uniform(0.4, 0.9))
                img[y : y + max(2, rows // 90), int(cols * 0.08) : x1] = rng.uniform(0.05, 0.25)
            y += int(rows * rng.uniform(0.025, 0.04))
        img = img + rng.normal(0, 0.01, img.shape)
        return np.clip(img * 255, 0, 255).astype(np.uint8)
    canvas = Canvas((rows, cols))
    px_per_mm = min(rows, cols) / rng.uniform(250, 400)
    if kind == "chest":
        cx = cols / 2
        canvas.capsule((cx, rows * 0.05), (cx, rows * 0.95), cols * 0.42, soft=True)
        canvas.soft *= 0.35
        for side in (-1, 1):  # ribs: arcs of bone across each lung field
            for k in range(9):
                yk = rows * (0.18 + 0.075 * k)
                canvas.capsule(
                    (cx + side * cols * 0.05, yk),
                    (cx + side * cols * 0.38, yk + rows * 0.06),
                    rows * 0.008,
                    medulla=0.5,
                )
        canvas.capsule((cx, rows * 0.05), (cx, rows * 0.95), cols * 0.035, medulla=0.4)
        for side in (-1, 1):
            canvas.ellipse(
                (cx + side * cols * 0.37, rows * 0.14), (cols * 0.02, cols * 0.12), math.pi / 2
            )
    elif kind == "knee":
        cx = cols / 2 + rng.uniform(-0.05, 0.05) * cols
        hw = cols * rng.uniform(0.08, 0.12)
        canvas.capsule((cx, -10), (cx, rows + 10), hw * 2.4, soft=True)
        canvas.capsule((cx, -10), (cx, rows * 0.45), hw, flare=1.6, medulla=0.6)
        canvas.capsule((cx, rows * 0.55), (cx, rows + 10), hw * 0.9, flare=1.5, medulla=0.6)
        canvas.ellipse((cx + hw * 1.2, rows * 0.4), (hw * 0.4, hw * 0.5), 0.0)
        canvas.soft *= 0.12
        canvas.bone *= 0.4
    # "blank": nothing but exposure, gradient and noise.
    return expose(canvas, px_per_mm, rng)
