"""Capture conditions: what kind of photo a comparison is made on, told from the pixels alone.

Impostor scores depend on the capture condition: with SFace, grey hard-light crops (Yale B)
need a far higher threshold than colour photos (260x the claim at lfw_dev's threshold, issue
19), and a tight crop, where the aligned face reaches past the photo and the embedder sees
mid-grey fill (a 168x193 counter-webcam crop, Yale B), shares that fill with every other tight
crop. One global threshold must then be the strictest of all conditions, and colour photos,
the usual web case, pay for the others in false non-matches, while a threshold fitted on colour
web photos lets too many impostors through on tight webcam crops. So thresholds are calibrated
per condition where the data supports it (``biometric.calibrate``) and the decision uses the
threshold of the pair's condition (``biometric.decide.OperatingPoint``).

Conditions, from the easiest: ``colour`` (a colour photo with the face well inside it),
``grey`` (no colour: black-and-white or infrared photos), ``tight`` (a tight crop, colour or
grey). A *pair's* condition is the harder of its two images' conditions: one grey or tight image
is enough to change how impostor scores spread.

Chip portrait vs live capture is not a condition here: every 1:1 verification compares one live
capture with one chip portrait, so the role does not split verification pairs. A site that
wants more conditions (per camera, say) adds them to an operating point's table; any condition
the table does not name falls back to its pooled threshold.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from biometric.align import ARCFACE_SIZE, ARCFACE_TEMPLATE, outside_fraction


class Condition(StrEnum):
    COLOUR = "colour"
    GREY = "grey"
    TIGHT = "tight"


# Order of hardness: a pair takes the last of its images' conditions in this order.
HARDNESS = (Condition.COLOUR, Condition.GREY, Condition.TIGHT)

# A photo is grey when the mean over its pixels of max(|R-G|, |G-B|) is below this. Measured on
# all 4,446 images of the shared sets (every second pixel, 2026-12-02): every grey photo scores
# exactly 0.0 (458 Yale B PGMs, 17 black-and-white LFW photos, 1 kpop_idols, 1 vn_celeb_toy);
# the lowest colour photos 2.37 (LFW Bing_Crosby_0001, a near-sepia print), 2.62 (asian_celeb),
# then 4.71; the colour medians 18-35. Half-way between 0 and the lowest colour photo, rounded.
GREY_MAX_CHROMA = 1.0
CHROMA_STEP = 2  # every second pixel in each direction: a quarter of the work, same figure


def chroma(rgb: np.ndarray) -> float:
    """Mean over pixels of the largest channel difference (0 for a grey image)."""
    if rgb.ndim == 2 or rgb.shape[2] == 1:
        return 0.0
    x = rgb[::CHROMA_STEP, ::CHROMA_STEP, :3].astype(np.int16)
    spread = np.maximum(np.abs(x[..., 0] - x[..., 1]), np.abs(x[..., 1] - x[..., 2]))
    return float(spread.mean())


# A photo is a tight crop when more than this share of the ArcFace 112x112 crop of its face lies
# outside it. Measured on every acquired photo of the shared sets (at most 10 per person,
# 2026-12-02): yaleb_moderate (168x192) 0.565-0.727; lfw_dev at most 0.399 (99th percentile 0),
# asian_celeb at most 0.348, vn_celeb_toy's 127-181 px contest crops 0.035-0.355, kpop_idols at
# most 0.241. Half-way between the largest ordinary photo and Yale B's smallest, rounded: a
# 168x193 counter-webcam crop, framed like Yale B, is tight; a portrait is not.
TIGHT_MIN_OUTSIDE = 0.48


def crop_outside(rgb: np.ndarray, landmarks: np.ndarray) -> float:
    """Share of the ArcFace crop of the face at ``landmarks`` that lies outside the photo."""
    return outside_fraction(rgb.shape, landmarks, np.asarray(ARCFACE_TEMPLATE), ARCFACE_SIZE)


def condition_of(chroma_value: float, outside: float | None) -> Condition:
    """The condition of a photo from its measurements (``outside`` None: no face found)."""
    if outside is not None and outside > TIGHT_MIN_OUTSIDE:
        return Condition.TIGHT
    return Condition.GREY if chroma_value < GREY_MAX_CHROMA else Condition.COLOUR


def image_condition(rgb: np.ndarray, landmarks: np.ndarray | None = None) -> Condition:
    """A photo's condition; without ``landmarks`` (no face) only colour or grey."""
    outside = None if landmarks is None else crop_outside(rgb, landmarks)
    return condition_of(chroma(rgb), outside)


def pair_condition(a: str, b: str) -> Condition:
    """The harder of the two images' conditions."""
    return HARDNESS[max(HARDNESS.index(Condition(a)), HARDNESS.index(Condition(b)))]


def pair_conditions(image_conditions: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Vectorised :func:`pair_condition` over pairs (``rows[k]``, ``cols[k]``) of images whose
    conditions are ``image_conditions`` (str array); returns a str array."""
    rank = np.asarray([HARDNESS.index(Condition(c)) for c in image_conditions], dtype=np.int8)
    names = np.asarray([c.value for c in HARDNESS])
    return names[np.maximum(rank[rows], rank[cols])]
