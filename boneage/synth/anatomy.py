"""Anatomy of a child's left hand (PA view) as a function of skeletal maturity.

Geometry is in millimetres in a hand frame: origin at the wrist, ``+y`` towards
the fingertips, ``+x`` towards the thumb (the thumb is on the image's right in
a left-hand PA film). The module knows no pixels; :mod:`boneage.synth.render`
draws what it returns.

Maturity follows the Greulich-Pyle picture of the hand:

* bones lengthen (hand length ~65 mm at birth to ~185 mm in adult boys) and
  widen; unossified cartilage between bones shrinks;
* carpal ossification centres appear in their order: capitate and hamate in
  the first year, triquetrum (~2.5 y), lunate (~3.5 y), trapezium (~5 y),
  trapezoid (~5.5 y), scaphoid (~6 y), pisiform (~10.5 y; 9-12 y); the
  adductor sesamoid of the thumb at ~13 y;
* epiphyses appear (1-3 y), widen to the width of their metaphysis, cap it,
  and fuse (distal phalanges first at ~14.5 y, the radius last at ~17.5 y);
* girls reach each stage about two years earlier than boys at puberty.

Ages in this module are *maturity years on the boys' scale*; use
:func:`maturity_years` to convert a bone age and sex.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

Point = tuple[float, float]

#: Appearance (maturity years) and adult size (half-axes, mm) of carpal centres
#: at their adult position (x, y). Order of appearance is the order of this table.
CARPALS: dict[str, tuple[float, Point, Point]] = {
    "capitate": (0.2, (0.0, 14.0), (7.0, 9.0)),
    "hamate": (0.35, (-11.0, 15.0), (6.0, 8.0)),
    "triquetrum": (2.5, (-15.5, 5.0), (5.0, 5.0)),
    "lunate": (3.5, (-3.5, 3.5), (5.5, 5.0)),
    "trapezium": (5.0, (15.5, 14.0), (5.5, 5.5)),
    "trapezoid": (5.5, (8.5, 19.0), (4.5, 4.5)),
    "scaphoid": (6.0, (10.0, 4.0), (6.5, 5.0)),
    "pisiform": (10.5, (-18.0, 9.5), (3.5, 3.5)),
}

#: Rays: (base point, angle in degrees from +y towards +x, segment lengths in mm
#: for an adult boy, proximal to distal). The thumb has no middle phalanx.
RAYS: dict[str, tuple[Point, float, tuple[float, ...]]] = {
    "little": ((-20.0, 27.0), -12.0, (52.0, 32.0, 19.0, 16.0)),
    "ring": ((-8.0, 30.0), -4.0, (57.0, 41.0, 27.0, 18.0)),
    "middle": ((3.0, 31.0), 0.0, (63.0, 44.0, 28.0, 18.0)),
    "index": ((14.0, 30.0), 5.0, (65.0, 40.0, 23.0, 17.0)),
    "thumb": ((20.0, 21.0), 36.0, (44.0, 31.0, 22.0)),
}
SEGMENTS = ("mc", "pp", "mp", "dp")
#: Adult mid-shaft half-widths (mm) by segment.
HALF_WIDTH = {"mc": 4.3, "pp": 4.4, "mp": 3.7, "dp": 3.0}
#: Epiphysis appearance and fusion (maturity years) by segment.
EPIPHYSIS_TIMING = {"mc": (1.8, 16.0), "pp": (1.6, 15.8), "mp": (2.6, 15.3), "dp": (2.2, 14.5)}
ADULT_HAND_LENGTH = 185.0
SESAMOID_APPEARS = 13.0


@dataclass(frozen=True)
class Shaft:
    """Ossified diaphysis + metaphyses of a tubular bone, from ``p0`` to ``p1``."""

    name: str
    p0: Point
    p1: Point
    half_width: float
    flare: float
    medulla: float  # medullary (inner) half-width as a fraction of the outer


@dataclass(frozen=True)
class Ellipse:
    """An ossification centre (carpal, epiphysis, sesamoid) as a rotated ellipse."""

    name: str
    center: Point
    half_axes: Point  # (across, along) the bone axis, mm
    angle: float  # radians; direction of the "along" axis from +y towards +x
    density: float = 1.0  # fades as an epiphysis fuses into its shaft


@dataclass
class Hand:
    """Everything the renderer draws, in hand-frame millimetres."""

    shafts: list[Shaft] = field(default_factory=list)
    centres: list[Ellipse] = field(default_factory=list)
    soft_capsules: list[tuple[Point, Point, float]] = field(default_factory=list)
    palm: list[Point] = field(default_factory=list)
    extent: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # xmin, xmax, ymin, ymax


def smoothstep(x: float, lo: float, hi: float) -> float:
    """Cubic ramp from 0 at ``lo`` to 1 at ``hi``."""
    t = min(max((x - lo) / (hi - lo), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def maturity_years(bone_age_months: float, male: bool) -> float:
    """Maturity on the boys' scale for a bone age (months) read on the sex's atlas.

    A girl's hand at bone age 13 y looks like a boy's at ~15 y: girls mature
    about two years earlier at puberty, a few months earlier in infancy.
    """
    years = bone_age_months / 12.0
    if male:
        return years
    return years * (1.0 + 0.16 * smoothstep(years, 2.0, 12.0))


def hand_length(m: float, male: bool) -> float:
    """Wrist-crease to middle-fingertip length (mm) at maturity ``m``."""
    length = 190.0 - 125.0 * math.exp(-m / 6.0)
    return length * (1.0 if male else 0.94)


def _direction(angle_deg: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([math.sin(a), math.cos(a)])


def _epiphysis(
    name: str,
    end: np.ndarray,
    axis: np.ndarray,
    shaft_hw: float,
    m: float,
    appear: float,
    fuse: float,
    outward: float,
) -> tuple[Ellipse | None, float]:
    """The epiphysis at one end of a shaft and how far the shaft reaches under it.

    Returns the ellipse (``None`` before it appears) and the shaft's extension
    (mm) towards it: 0 while the physis is open, the epiphysis's full height
    once fused (bone is continuous).
    """
    if m < appear:
        return None, 0.0
    growth = smoothstep(m, appear, appear + 7.0)
    width = shaft_hw * 1.35 * (0.3 + 0.75 * growth)  # reaches the metaphysis width, then caps it
    width *= 1.0 + 0.1 * smoothstep(m, fuse - 3.0, fuse - 1.0)
    height = max(0.9, width * (0.45 - 0.1 * growth))
    fusion = smoothstep(m, fuse - 1.0, fuse)
    gap = (1.6 - 1.1 * growth) * (1.0 - fusion) * shaft_hw / 4.0
    centre = end + axis * outward * (gap + height)
    angle = math.atan2(axis[0], axis[1])
    ellipse = Ellipse(
        name,
        (float(centre[0]), float(centre[1])),
        (width, height),
        angle,
        density=1.0 - 0.6 * fusion,
    )
    return ellipse, fusion * height


def build_hand(
    bone_age_months: float, male: bool, rng: np.random.Generator, spread: float | None = None
) -> Hand:
    """Lay out one hand at the maturity of ``bone_age_months`` for the sex.

    ``rng`` adds individual variation (proportions, finger spread, the timing
    of each centre by a few months), so two hands at the same bone age differ
    as real ones do.
    """
    m = maturity_years(bone_age_months, male)
    scale = hand_length(m, male) / ADULT_HAND_LENGTH * rng.normal(1.0, 0.03)
    slender = 0.78 + 0.22 * (1.0 - math.exp(-m / 5.0))  # bones widen with age
    cartilage = 0.30 * math.exp(-m / 3.2)  # unossified share of each segment
    medulla = 0.72 - 0.2 * smoothstep(m, 2.0, 16.0)  # cortex thickens
    spread = rng.uniform(0.3, 1.2) if spread is None else spread
    jitter = lambda: rng.normal(0.0, 0.25)  # noqa: E731 - timing variation, years
    hand = Hand()
    heads: list[np.ndarray] = []

    for ray, (base, angle, lengths) in RAYS.items():
        thumb = ray == "thumb"
        segs = ("mc", "pp", "dp") if thumb else SEGMENTS
        extra = {"little": -16.0, "ring": -6.0, "middle": 0.0, "index": 8.0, "thumb": 12.0}[ray]
        pos = np.array(base) * scale
        for seg, length in zip(segs, lengths):
            ang = angle + (0.0 if seg == "mc" else extra * spread) + rng.normal(0.0, 1.5)
            axis = _direction(ang)
            seg_len = length * scale * rng.normal(1.0, 0.02)
            joint = seg_len * (0.03 + cartilage)
            # Epiphysis: proximal in phalanges and the thumb metacarpal, distal in MC2-5.
            distal_epi = seg == "mc" and not thumb
            zone = seg_len * 0.14
            start = pos + axis * joint / 2
            end = pos + axis * (seg_len - joint / 2)
            p0 = start + (0 if distal_epi else zone) * axis
            p1 = end - (zone if distal_epi else 0) * axis
            hw = HALF_WIDTH[seg] * scale * slender * (1.1 if thumb else 1.0)
            appear, fuse = EPIPHYSIS_TIMING[seg]
            if thumb and seg == "mc":
                appear -= 0.3
            epi, reach = _epiphysis(
                f"{ray}_{seg}_epiphysis",
                p1 if distal_epi else p0,
                axis,
                hw,
                m,
                appear + jitter(),
                fuse + jitter(),
                1.0 if distal_epi else -1.0,
            )
            if epi is not None:
                hand.centres.append(epi)
                if distal_epi:
                    p1 = p1 + axis * reach
                else:
                    p0 = p0 - axis * reach
            flare = 1.45 if seg != "dp" else 1.25
            hand.shafts.append(Shaft(f"{ray}_{seg}", _pt(p0), _pt(p1), hw, flare, medulla))
            if seg == "mc":
                heads.append(pos + axis * seg_len)
            if thumb and seg == "mc" and m + jitter() > SESAMOID_APPEARS:
                side = np.array([-axis[1], axis[0]])
                c = end - axis * hw * 0.5 - side * hw * 1.2
                r = hw * 0.45 * (0.5 + 0.5 * smoothstep(m, SESAMOID_APPEARS, SESAMOID_APPEARS + 3))
                hand.centres.append(Ellipse("sesamoid", _pt(c), (r, r * 1.2), 0.0))
            soft = hw * 1.15 + scale * (4.8 + 3.0 * math.exp(-m / 3.0))
            hand.soft_capsules.append((_pt(pos), _pt(pos + axis * seg_len), soft))
            pos = pos + axis * seg_len

    for name, (appear, (cx, cy), (ax, ay)) in CARPALS.items():
        onset = appear + jitter()
        if m < onset:
            continue
        size = 0.22 + 0.78 * smoothstep(m, onset, onset + 7.0)
        ratio = 1.0 - 0.25 * (1.0 - size)  # young centres are round
        c = (cx * scale, cy * scale * (0.85 + 0.15 * size))
        hand.centres.append(
            Ellipse(name, c, (ax * scale * size, ay * scale * size * ratio), rng.normal(0.0, 0.15))
        )

    # Forearm: distal radius (thumb side) and ulna with their epiphyses.
    for name, x, hw_adult, appear, fuse in (
        ("radius", 11.0, 7.0, 1.1, 17.5),
        ("ulna", -12.5, 4.8, 7.0, 16.8),
    ):
        axis = np.array([0.0, 1.0])
        hw = hw_adult * scale * slender
        top = np.array([x * scale, -scale * (4.0 + 40.0 * cartilage)])
        bottom = np.array([x * scale * 1.05, -scale * 75.0])
        epi, reach = _epiphysis(
            f"{name}_epiphysis", top, axis, hw, m, appear + jitter(), fuse + jitter(), 1.0
        )
        if epi is not None:
            hand.centres.append(epi)
            top = top + axis * reach
        hand.shafts.append(Shaft(name, _pt(bottom), _pt(top), hw, 1.35, medulla))
        hand.soft_capsules.append((_pt(bottom - axis * 20 * scale), _pt(top), hw * 1.5 + 8 * scale))

    wrist_l = np.array([-27.0, 0.0]) * scale
    wrist_r = np.array([27.0, 5.0]) * scale
    thumb_mid = np.array(RAYS["thumb"][0]) * scale + _direction(36.0) * 35 * scale
    hand.palm = [
        _pt(p) for p in (wrist_l, heads[0] + [-4 * scale, 0], *heads[1:4], thumb_mid, wrist_r)
    ]
    pts = np.array([p for s in hand.soft_capsules for p in s[:2]])
    margin = 15.0 * scale
    # The film shows the distal forearm only (to ~45 mm below the wrist).
    hand.extent = (
        float(pts[:, 0].min() - margin),
        float(pts[:, 0].max() + margin),
        -45.0 * scale,
        float(pts[:, 1].max() + margin),
    )
    return hand


def _pt(p: np.ndarray) -> Point:
    return (float(p[0]), float(p[1]))
