"""Image quality control: polarity and "is this a hand at all".

Both checks work on the decoded float image (rows, cols) in [0, 1], on a
copy subsampled to about :data:`QC_SIDE` pixels, and cost a few milliseconds.

* Polarity: radiographs have a dark background (no attenuation) around a
  brighter body part; an inverted film (MONOCHROME1 shown raw, or a negative)
  has a bright frame around darker anatomy.
* Hand: what makes a PA hand film a hand is its silhouette. The background
  (every dark region connected to the film's edge) runs in between the
  fingers, so the silhouette has several *fingers*: thin, elongated
  protrusions attached to a wider palm, pointing away from it, each with a
  free end that does not reach the film's edge. A chest, knee, skull or spine film has wide body
  parts that run off the film, lungs enclosed by ribs or joined to the edge
  in wide lobes, and no such set of free, thin protrusions. Blank frames
  (no contrast), noise or text (no vertically coherent structure) and films
  whose silhouette is in pieces (a page's lines: a hand and forearm are one
  body) are rejected before fingers are counted. A collimator's shadow (a
  bright, flat band from the film's edge with a straight inner boundary) is
  set to the background first: it would join the silhouette and hide the
  fingers behind a "palm" wider than any hand's.

Where a DICOM header says the film is something else (``Modality: MR``,
``BodyPartExamined: CHEST``), that decides. Every verdict carries the rule that decided it and the
measured figures, so a reviewer sees why a film was rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
#: A finger points away from its palm's centre, never back across it: within 90 degrees of
#: the line from the centre to its base (real hands: 50 degrees at most; the pegs and rims
#: of a knee implant: 80 to 120). Tighter (60 degrees) loses infants' hands, whose bone-level
#: silhouettes have several small "palms".
MIN_OUTWARD = 0.0
#: A protrusion that does not reach a palm but comes within this share of the palm radius
#: of a part attached to one (a knuckle) is attached through it: the silhouette of a faint
#: film breaks at the joints of the bones (a young child's metacarpophalangeal joint).
JOINT_GAP = 0.125
#: A finger's least area, in pixels per R**2 (R: the palm's inscribed radius).
MIN_FINGER_AREA = 0.1
#: A branch of a forked protrusion (fingers held together) is a finger when it holds at
#: least this many pixels per R**2 (a finger's outer half: ~0.3).
MIN_BRANCH = 0.15
#: Fingers of one hand point within 70 degrees of each other (thumb to index: ~60).
FINGER_SPREAD_COS = 0.34
#: Collimator shadows (see collimator_shadows): least share of the film, least share of the
#: shorter side along the film's edge, and how straight the inner boundary is.
SHADOW_AREA, SHADOW_EDGE, SHADOW_LINE = 0.03, 0.3, 0.08
#: A blade's edge is soft (the penumbra, then QC's smoothing): its bright rim, as wide as
#: this share of the shorter side, goes with the shadow (else it stays as a thin strip
#: along the film that raises Otsu's threshold over a faint hand).
SHADOW_PENUMBRA = 0.015
#: A softer edge (a wide penumbra) ramps down further: pixels brighter than this share of the
#: step from the open field to the shadow, within this share of the shorter side of it, go too.
SHADOW_RAMP, SHADOW_RAMP_REACH = 0.25, 0.05
#: Vertical coherence of the foreground below which a film is noise or text, not anatomy.
MIN_COHERENCE = 0.76
#: A hand is one body: the largest connected part of its silhouette holds at least this share
#: of it (at one of QC's two thresholds). Synthetic hands, hard ones included, 0.64 and more
#: (7,000 films, 7 seeds); real hands 0.89; the lines of a text page, each a part, 0.31 at most.
MIN_BODY_SHARE = 0.5
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
    outward: float = 1.0  # cosine between its direction and the palm centre -> its base

    @property
    def is_finger(self) -> bool:
        """Thin, elongated, long enough, attached to a palm, with a free end, and pointing
        away from the palm (a finger leaves the palm outwards; the pegs and rims of an
        implant stick out sideways or back)."""
        return (
            self.free
            and self.palm > 0
            and self.outward >= MIN_OUTWARD
            and self.elongation >= 1.8
            and self.area >= MIN_FINGER_AREA
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
    index = np.clip(img * bins, 0, bins - 1).astype(np.intp)  # np.histogram's bins, cheaper
    hist = np.bincount(index.ravel(), minlength=bins)
    edges = np.linspace(0.0, 1.0, bins + 1)
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
    labels, n = ndi.label(small < threshold)
    body = np.ones(n + 1, bool)  # per label: not a dark region that reaches the edge
    body[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = False
    body[0] = True  # the bright pixels
    return body[labels]


def protrusions(sil: np.ndarray) -> list[Finger]:
    """The parts of a silhouette thinner than half its widest part (the palm), measured
    (those smaller than any finger, :data:`MIN_FINGER_AREA`, left out).

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
    palms, n_palms = ndi.label(to_wide <= reach)  # each palm with the bases of its fingers
    wr, wc = np.nonzero(wide)  # each palm's centre: the mean of its wide pixels
    count = np.maximum(np.bincount(palms[wr, wc], minlength=n_palms + 1), 1)
    centres = np.stack([np.bincount(palms[wr, wc], w, n_palms + 1) for w in (wr, wc)], 1)
    centres = centres / count[:, None]
    labels, _ = ndi.label(sil & ~wide)
    rows, cols = sil.shape
    parts = []  # (pixels, base, palm) of each protrusion
    palm_of = np.where(wide, palms, 0)  # the palm each attached pixel belongs to
    for i, box in enumerate(ndi.find_objects(labels), start=1):
        r, c = np.nonzero(labels[box] == i)
        if len(r) < 10:
            continue
        r, c = r + box[0].start, c + box[1].start
        base = to_wide[r, c] <= reach
        palm = int(np.bincount(palms[r[base], c[base]]).argmax()) if base.any() else 0
        palm_of[r, c] = palm
        parts.append((r, c, base, palm))
    if any(not palm for *_, palm in parts):  # attach through a joint's gap
        gap, (near_r, near_c) = ndi.distance_transform_edt(palm_of == 0, return_indices=True)
        joint = max(2.0, JOINT_GAP * radius)
        for k, (r, c, base, palm) in enumerate(parts):
            if not palm and (gap[r, c] <= joint).any():
                base = gap[r, c] <= joint
                via = palm_of[near_r[r[base], c[base]], near_c[r[base], c[base]]]
                parts[k] = (r, c, base, int(np.bincount(via).argmax()))
    found = []
    for part_r, part_c, part_base, palm in parts:
        if len(part_r) < MIN_FINGER_AREA * radius**2:
            continue  # too small for a finger (or a fork of two)
        for r, c, base in fork(part_r, part_c, part_base, radius):
            finger = _measure(r, c, base, palm, dist, radius, rows, cols)
            if palm:
                out = np.array([r[base].mean(), c[base].mean()]) - centres[palm]
                out = out / max(float(np.hypot(*out)), 1e-6)
                cos = float(out[0] * finger.direction[0] + out[1] * finger.direction[1])
                finger = replace(finger, outward=cos)
            found.append(finger)
    return found


def fork(
    r: np.ndarray, c: np.ndarray, base: np.ndarray, radius: float
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A protrusion as the fingers it holds: fingers held together join above the palm
    (their webbing is high), so the silhouette shows one forked protrusion. Beyond a third
    of its reach from its base's centre it splits into branches; each branch of at least
    :data:`MIN_BRANCH` (x R**2) with the shared stem is one finger. A protrusion that
    does not split is returned whole."""
    if not base.any() or len(r) < 2 * MIN_BRANCH * radius**2:
        return [(r, c, base)]
    r0, c0 = r.min(), c.min()
    reach = np.hypot(r - r[base].mean(), c - c[base].mean())  # from the base's centre
    outer = np.zeros((r.max() - r0 + 1, c.max() - c0 + 1), bool)
    outer[r - r0, c - c0] = reach >= reach.max() / 3
    branches, n = ndi.label(outer)
    if n < 2:
        return [(r, c, base)]
    branch = branches[r - r0, c - c0]
    sizes = np.bincount(branch, minlength=n + 1)
    big = [k for k in range(1, n + 1) if sizes[k] >= MIN_BRANCH * radius**2]
    if len(big) < 2:
        return [(r, c, base)]
    stem = branch == 0
    return [(r[keep], c[keep], base[keep]) for keep in (stem | (branch == k) for k in big)]


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
    low, high = _moments(r, c)
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


def _moments(r: np.ndarray, c: np.ndarray) -> tuple[float, float]:
    """The eigenvalues (low, high) of the pixels' 2 x 2 covariance (as ``np.cov``: N - 1)."""
    dr, dc = r - r.mean(), c - c.mean()
    n = max(len(r) - 1, 1)
    a, d, b = float(dr @ dr) / n, float(dc @ dc) / n, float(dr @ dc) / n
    mid, half = (a + d) / 2, float(np.hypot((a - d) / 2, b))
    return mid - half, mid + half


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


def levels(upright: np.ndarray) -> tuple[float, float]:
    """QC's two foreground thresholds of an upright (bone bright) small image: Otsu's, then
    halfway between it and the background (the faint soft tissue of fingertips on infant
    films, where Otsu's picks out the short bones)."""
    otsu = otsu_threshold(upright)
    return otsu, (otsu + border_level(upright)) / 2


def silhouettes(upright: np.ndarray, at: tuple[float, float] | None = None) -> list[np.ndarray]:
    """The two silhouettes QC reads of an upright small image, at about
    :data:`SILHOUETTE_SIDE`, at its two :func:`levels` (``at``, if already known)."""
    coarse = upright[::2, ::2] if max(upright.shape) > 2 * SILHOUETTE_SIDE else upright
    return [silhouette(coarse, t) for t in at or levels(upright)]


def body_share(sils: list[np.ndarray]) -> float:
    """Share of a silhouette in its largest connected part (the larger of QC's two
    :func:`silhouettes`): a hand and forearm are one body, a page of text is many lines."""
    best = 0.0
    for sil in sils:
        labels, n = ndi.label(sil)
        if n:
            sizes = np.bincount(labels.ravel())[1:]
            best = max(best, float(sizes.max() / sizes.sum()))
    return best


def count_fingers(sils: list[np.ndarray]) -> int:
    """Fingers of QC's :func:`silhouettes`; the second is read only when the first shows
    too few. Returns the larger count."""
    best = 0
    for sil in sils:
        best = max(best, hand_fingers(protrusions(sil)))
        if best >= MIN_FINGERS:
            break
    return best


def coherence(small: np.ndarray, at: tuple[float, float] | None = None) -> float:
    """Share of foreground pixels still foreground a little further down the image.

    Anatomy is made of long structures (fingers, bones, forearm): ~0.9 and more.
    Noise and texture decorrelate within a few rows: ~0.5. The foregrounds at
    both :func:`levels` are scored (``at``, if already known), the better counts.
    """
    d = max(4, small.shape[0] // 60)
    best = 0.0
    for threshold in at or levels(small):
        mask = small > threshold
        above = mask[:-d]
        best = max(best, float((above & mask[d:]).sum() / max(above.sum(), 1)))
    return best


def collimator_shadows(small: np.ndarray) -> np.ndarray:
    """Where a collimator blade shadowed the film: a bright, flat region that runs in
    from the film's edge and ends in a straight line (unexposed film, no anatomy).

    Such a band joins the silhouette (it touches the edge and is bright) and,
    wider than any palm, hides the hand's fingers. Bright: above Otsu's
    threshold; flat: local spread (7 x 7) in the lower half of the film's; a
    band: at least 3 % of the film, touching its edge over 30 % of the shorter
    side, its inner boundary a line (second singular value under 8 % of the first).
    """
    rows, cols = small.shape
    bright = small > otsu_threshold(small)
    # A band touches the edge over SHADOW_EDGE of the shorter side, all of it bright: where
    # fewer of the edge's pixels are bright, there is none (most films: no filters needed).
    edge = bright[0].sum() + bright[-1].sum() + bright[:, 0].sum() + bright[:, -1].sum()
    if edge < SHADOW_EDGE * min(rows, cols):
        return np.zeros_like(bright)
    mean = ndi.uniform_filter(small, 7)
    spread = np.sqrt(np.maximum(ndi.uniform_filter(small * small, 7) - mean * mean, 0.0))
    candidate = (spread < np.percentile(spread, 50)) & bright
    labels, _ = ndi.label(candidate)
    shadows = np.zeros_like(candidate)
    sizes = np.bincount(labels.ravel())
    for i in np.nonzero(sizes >= SHADOW_AREA * rows * cols)[0]:
        if i == 0:
            continue
        region = labels == i
        touching = region[0].sum() + region[-1].sum() + region[:, 0].sum() + region[:, -1].sum()
        if touching < SHADOW_EDGE * min(rows, cols):
            continue
        inner = region & ~ndi.binary_erosion(region)
        inner[[0, 1, -2, -1], :] = inner[:, [0, 1, -2, -1]] = False
        r, c = np.nonzero(inner)
        if len(r) < 10:
            continue
        points = np.stack([r, c], 1).astype(np.float64)
        sv = np.linalg.svd(points - points.mean(0), compute_uv=False)
        if sv[1] < SHADOW_LINE * sv[0]:
            shadows |= region
    if shadows.any():
        rim = max(2, round(SHADOW_PENUMBRA * min(rows, cols)))
        shadows = ndi.binary_dilation(shadows, iterations=rim)
        # A soft blade edge ramps down to the open field over more than the rim: the ramp
        # above a quarter of the step from the field to the shadow goes with the shadow.
        field = open_field_level(small, shadows)
        ramp = small > field + SHADOW_RAMP * (float(np.median(small[shadows])) - field)
        grow = max(rim, round(SHADOW_RAMP_REACH * min(rows, cols)))
        shadows = ndi.binary_dilation(shadows, iterations=grow, mask=ramp)
    return shadows


def open_field_level(small: np.ndarray, shadows: np.ndarray) -> float:
    """Grey level of the film's open background: its edge outside the ``shadows``."""
    ring = np.zeros_like(shadows)
    ring[[0, -1], :] = ring[:, [0, -1]] = True
    open_edge = ring & ~shadows
    return float(np.median(small[open_edge])) if open_edge.any() else float(small.min())


def without_shadows(small: np.ndarray) -> np.ndarray:
    """``small`` with collimator shadows set to the level of the film's open background."""
    shadows = collimator_shadows(small)
    if not shadows.any():
        return small
    return np.where(shadows, np.float32(open_field_level(small, shadows)), small)


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
    small = without_shadows(working_image(img))
    lo, hi = np.percentile(small[::2, ::2], [1, 99])  # a quarter of the pixels: the same spread
    contrast = float(hi - lo)  # after smoothing: noise alone is no contrast
    if contrast < MIN_CONTRAST:
        return QCResult(
            False, False, "no_hand", 0, contrast, f"contrast {contrast:.2f} < {MIN_CONTRAST}"
        )
    inverted = is_inverted(small)
    # An inverted film's collimator shadow is dark: it shows, bright, once the film is upright.
    upright = without_shadows(1.0 - small) if inverted else small
    at = levels(upright)
    coh = coherence(upright, at)
    if coh < MIN_COHERENCE:
        return QCResult(
            inverted, False, "no_hand", 0, contrast, f"coherence {coh:.2f} < {MIN_COHERENCE}"
        )
    sils = silhouettes(upright, at)
    share = body_share(sils)
    if share < MIN_BODY_SHARE:
        rule = f"in pieces: largest part {share:.2f} < {MIN_BODY_SHARE}"
        return QCResult(inverted, False, "no_hand", 0, contrast, rule)
    fingers = count_fingers(sils)
    is_hand = fingers >= MIN_FINGERS
    rule = f"fingers {fingers} {'>=' if is_hand else '<'} {MIN_FINGERS}"
    return QCResult(
        inverted and is_hand, is_hand, None if is_hand else "no_hand", fingers, contrast, rule
    )
