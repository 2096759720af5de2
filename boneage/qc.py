"""Image quality control: polarity and "is this a hand at all".

Both checks work on the decoded float image (rows, cols) in [0, 1], on a
copy subsampled to about :data:`QC_SIDE` pixels, and cost a few milliseconds.

* Polarity: radiographs have a dark background (no attenuation) around a
  brighter body part; an inverted film (MONOCHROME1 shown raw, or a negative)
  has a bright frame around darker anatomy.
* Hand: what makes a PA hand film a hand is its silhouette. The background
  (every dark region connected to the film's edge) runs in between the
  fingers, so the silhouette has several *fingers*: thin, elongated
  protrusions attached to a wider palm, each with a free end that does not
  reach the film's edge. A chest, knee, skull or spine film has wide body
  parts that run off the film, lungs enclosed by ribs or joined to the edge
  in wide lobes, and no such set of free, thin protrusions. Blank frames
  (no contrast) and noise or text (no vertically coherent structure) are
  rejected before the silhouette is looked at.

Where a DICOM header says the film is something else (``Modality: MR``,
``BodyPartExamined: CHEST``), that decides. Every verdict carries the rule that decided it and the
measured figures, so a reviewer sees why a film was rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from boneage.preprocess import blur_image, border_level

#: QC works on the image subsampled to about this many pixels on its longer side.
QC_SIDE = 256
#: Silhouettes are measured at about this side (and up to twice it): fingers stay several
#: pixels wide, and the distance transforms stay cheap.
SILHOUETTE_SIDE = 128
#: Films smaller than this (pixels, shorter side) are rejected as ``too_small``.
MIN_SIDE = 100
#: A hand shows at least this many fingers (free thin protrusions of the silhouette).
MIN_FINGERS = 3
#: Fingers of one hand point within 70 degrees of each other (thumb to index: ~60).
FINGER_SPREAD_COS = 0.34
#: Vertical coherence of the foreground below which a film is noise or text, not anatomy.
MIN_COHERENCE = 0.76
#: Grey-level spread (1st-99th percentile, smoothed) below which a film is blank.
MIN_CONTRAST = 0.1
#: DICOM Modality values of a radiograph (or a scanned or exported film).
RADIOGRAPH_MODALITIES = {"CR", "DX", "DR", "RG", "PX", "OT", "SC"}
#: BodyPartExamined values (upper case, spaces removed) of films that are not hands.
OTHER_PARTS = frozenset(
    "CHEST THORAX LUNG ABDOMEN PELVIS HIP KNEE LEG FOOT ANKLE SKULL HEAD BRAIN SPINE CSPINE "
    "TSPINE LSPINE SHOULDER ELBOW BREAST NECK FEMUR TIBIA HEART SINUS".split()
)


@dataclass(frozen=True)
class Finger:
    """One candidate protrusion of a silhouette, its sizes relative to the palm radius R."""

    area: float  # pixels / R**2
    elongation: float  # sqrt of the ratio of its second moments
    length: float  # 4 * sd along its main axis / R
    width: float  # twice its largest inscribed radius / R
    free: bool  # does not run along the film's edge (a cut-off tip may touch it)
    palm: int  # label of the wide part it is attached to (0: none)
    direction: tuple[float, float]  # unit vector (row, col) from its base to its tip

    @property
    def is_finger(self) -> bool:
        """Thin, elongated, long enough, attached to a palm, with a free end."""
        return (
            self.free
            and self.palm > 0
            and self.elongation >= 1.8
            and self.area >= 0.1
            and self.length >= 0.6
            and self.width <= 1.0
        )


@dataclass(frozen=True)
class QCResult:
    """Verdict for one image: ``reason`` is set when it is rejected.

    ``rule`` names the check that decided, with its figures (for the manifest
    and the report): e.g. ``fingers 5 >= 3`` or ``fingers 0 < 3``.
    """

    inverted: bool
    is_hand: bool
    reason: str | None
    fingers: int
    contrast: float
    rule: str = ""


def is_inverted(img: np.ndarray) -> bool:
    """True when the frame is brighter than the centre (white background)."""
    rows, cols = img.shape
    centre = img[rows // 4 : 3 * rows // 4, cols // 4 : 3 * cols // 4]
    return border_level(img) > float(np.mean(centre))


def otsu_threshold(img: np.ndarray, bins: int = 128) -> float:
    """Otsu's threshold of a float image in [0, 1]."""
    hist, edges = np.histogram(img, bins=bins, range=(0.0, 1.0))
    p = hist.astype(np.float64) / max(hist.sum(), 1)
    omega = np.cumsum(p)
    mu = np.cumsum(p * (edges[:-1] + edges[1:]) / 2)
    between = (mu[-1] * omega - mu) ** 2 / np.maximum(omega * (1 - omega), 1e-12)
    return float(edges[int(np.argmax(between)) + 1])


def silhouette(small: np.ndarray, threshold: float) -> np.ndarray:
    """The body part's silhouette: all but the dark regions connected to the film's edge.

    Returns a boolean mask (rows, cols); dark regions enclosed by the body
    (lungs behind ribs) are part of the silhouette.
    """
    labels, _ = ndi.label(small < threshold)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return ~np.isin(labels, edge[edge > 0])


def protrusions(sil: np.ndarray) -> list[Finger]:
    """The parts of a silhouette thinner than half its widest part (the palm), measured.

    The palm radius R is the largest inscribed radius; opening with a disk of
    R/2 keeps the palm (and other wide parts) and removes fingers.
    """
    dist = ndi.distance_transform_edt(np.pad(sil, 1))[1:-1, 1:-1]
    radius = float(dist.max())
    if radius < 2:
        return []
    half = radius / 2
    wide = ndi.distance_transform_edt(~(dist > half)) <= half  # opened: palms, wide parts
    to_wide = ndi.distance_transform_edt(~wide)
    reach = max(2.0, radius / 4)  # a finger cut off at a joint still counts as attached
    palms, _ = ndi.label(to_wide <= reach)  # each palm with the bases of its fingers
    labels, _ = ndi.label(sil & ~wide)
    rows, cols = sil.shape
    found = []
    for i, box in enumerate(ndi.find_objects(labels), start=1):
        r, c = np.nonzero(labels[box] == i)
        if len(r) < 10:
            continue
        r, c = r + box[0].start, c + box[1].start
        base = to_wide[r, c] <= reach
        palm = int(np.bincount(palms[r[base], c[base]]).argmax()) if base.any() else 0
        found.append(_measure(r, c, base, palm, dist, radius, rows, cols))
    return found


def _measure(
    r: np.ndarray,
    c: np.ndarray,
    base: np.ndarray,
    palm: int,
    dist: np.ndarray,
    radius: float,
    rows: int,
    cols: int,
) -> Finger:
    """Sizes and direction of one protrusion (pixel coordinates ``r, c``)."""
    low, high = np.linalg.eigvalsh(np.cov(np.stack([r, c])))
    if base.any():
        root = np.array([r[base].mean(), c[base].mean()])
        far = int(np.argmax((r - root[0]) ** 2 + (c - root[1]) ** 2))
        vec = np.array([r[far], c[far]]) - root
        direction = tuple(float(v) for v in vec / max(float(np.hypot(*vec)), 1e-6))
    else:
        direction = (0.0, 0.0)
    return Finger(
        area=len(r) / radius**2,
        elongation=float(np.sqrt(high / max(low, 1e-6))),
        length=float(4 * np.sqrt(max(high, 0.0)) / radius),
        width=float(2 * dist[r, c].max() / radius),
        free=bool(on_edge(r, c, rows, cols) <= 2 * dist[r, c].max()),
        palm=palm,
        direction=direction,  # type: ignore[arg-type]
    )


def on_edge(r: np.ndarray, c: np.ndarray, rows: int, cols: int) -> int:
    """How many of the pixels ``r, c`` lie on the outer two pixels of a (rows, cols) film."""
    return int(((r <= 1) | (c <= 1) | (r >= rows - 2) | (c >= cols - 2)).sum())


def hand_fingers(fingers: list[Finger]) -> int:
    """The most fingers that share one palm and point the same way (within 70 degrees).

    A hand's fingers leave the palm side by side; lobes of lungs, loops of
    bowel or the edges of other films stick out in all directions.
    """
    real = [f for f in fingers if f.is_finger]
    best = 0
    for f in real:
        together = [
            g
            for g in real
            if g.palm == f.palm
            and f.direction[0] * g.direction[0] + f.direction[1] * g.direction[1]
            >= FINGER_SPREAD_COS
        ]
        best = max(best, len(together))
    return best


def count_fingers(upright: np.ndarray) -> int:
    """Fingers of the silhouette of an upright (bone bright) small image.

    Two silhouettes are tried, at Otsu's threshold and halfway between it and
    the background (faint soft tissue of fingertips on infant films); the
    second only when the first shows too few fingers. Returns the larger count.
    """
    otsu = otsu_threshold(upright)
    coarse = upright[::2, ::2] if max(upright.shape) > 2 * SILHOUETTE_SIDE else upright
    best = 0
    for threshold in (otsu, (otsu + border_level(upright)) / 2):
        best = max(best, hand_fingers(protrusions(silhouette(coarse, threshold))))
        if best >= MIN_FINGERS:
            break
    return best


def coherence(small: np.ndarray) -> float:
    """Share of foreground pixels still foreground a little further down the image.

    Anatomy is made of long structures (fingers, bones, forearm): ~0.9 and more.
    Noise and texture decorrelate within a few rows: ~0.5. Two foregrounds are
    scored, Otsu's and a lower one halfway to the background (on faint infant
    films Otsu's threshold picks out the short bones, not the soft tissue).
    """
    otsu = otsu_threshold(small)
    d = max(4, small.shape[0] // 60)
    best = 0.0
    for threshold in (otsu, (otsu + border_level(small)) / 2):
        mask = small > threshold
        above = mask[:-d]
        best = max(best, float((above & mask[d:]).sum() / max(above.sum(), 1)))
    return best


def working_image(img: np.ndarray) -> np.ndarray:
    """The image QC looks at: subsampled to about :data:`QC_SIDE` px and smoothed."""
    step = max(1, max(img.shape) // QC_SIDE)
    return blur_image(img[::step, ::step], 1.5)


def _tag(value: object) -> str:
    """A DICOM header value as upper-case words ('' when absent, None or NaN)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return " ".join(str(value).upper().replace("_", " ").split())


def header_rule(body_part: object = None, modality: object = None) -> str | None:
    """The rejecting rule when a DICOM header says the film is not a hand radiograph.

    A modality other than a radiograph's (CR, DX, ...: an MR, CT, ultrasound
    or bone scan) or a BodyPartExamined naming another part (CHEST) rejects.
    Unknown or empty values leave the decision to the pixels.
    """
    mod = _tag(modality)
    if mod and mod not in RADIOGRAPH_MODALITIES:
        return f"Modality {mod} is not a radiograph"
    part = _tag(body_part)
    if part.replace(" ", "") in OTHER_PARTS:
        return f"BodyPartExamined {part}"
    return None


def check(img: np.ndarray, body_part: object = None, modality: object = None) -> QCResult:
    """Run polarity and hand checks on a decoded image (float (rows, cols) in [0, 1]).

    ``body_part`` and ``modality`` are the DICOM BodyPartExamined and Modality
    where the source has them (see :func:`header_rule`).
    """
    if min(img.shape) < MIN_SIDE:
        return QCResult(False, False, "too_small", 0, 0.0, f"shorter side {min(img.shape)} px")
    header = header_rule(body_part, modality)
    if header:
        return QCResult(False, False, "no_hand", 0, 0.0, header)
    small = working_image(img)
    lo, hi = np.percentile(small, [1, 99])
    contrast = float(hi - lo)  # after smoothing: noise alone is no contrast
    if contrast < MIN_CONTRAST:
        return QCResult(
            False, False, "no_hand", 0, contrast, f"contrast {contrast:.2f} < {MIN_CONTRAST}"
        )
    inverted = is_inverted(small)
    upright = 1.0 - small if inverted else small
    coh = coherence(upright)
    if coh < MIN_COHERENCE:
        return QCResult(
            inverted, False, "no_hand", 0, contrast, f"coherence {coh:.2f} < {MIN_COHERENCE}"
        )
    fingers = count_fingers(upright)
    is_hand = fingers >= MIN_FINGERS
    rule = f"fingers {fingers} {'>=' if is_hand else '<'} {MIN_FINGERS}"
    return QCResult(
        inverted and is_hand, is_hand, None if is_hand else "no_hand", fingers, contrast, rule
    )
