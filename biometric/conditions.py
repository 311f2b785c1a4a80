"""Capture conditions: what kind of photo a comparison is made on, told from the pixels alone.

Impostor scores depend on the capture condition: with SFace, grey hard-light crops (Yale B)
need a far higher threshold than colour photos (260x the claim at lfw_dev's threshold, issue
19). One global threshold must then be the strictest of all conditions, and colour photos,
the usual case at a counter, pay for the grey ones in false non-matches. So thresholds are
calibrated per condition where the data supports it (``biometric.calibrate``) and the decision
uses the threshold of the pair's condition (``biometric.decide.OperatingPoint``).

A *pair's* condition is the harder of its two images' conditions: a grey image compared with a
colour one is scored like a grey pair (the colour cue is missing on one side).

Chip portrait vs live capture is not a condition here: every 1:1 verification compares one live
capture with one chip portrait, so the role does not split verification pairs. A site that
wants more conditions (per camera, say) adds them to an operating point's table; any condition
the table does not name falls back to its pooled threshold.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np


class Condition(StrEnum):
    COLOUR = "colour"
    GREY = "grey"


# Order of hardness: a pair takes the last of its images' conditions in this order.
HARDNESS = (Condition.COLOUR, Condition.GREY)

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


def image_condition(rgb: np.ndarray) -> Condition:
    return Condition.GREY if chroma(rgb) < GREY_MAX_CHROMA else Condition.COLOUR


def pair_condition(a: str, b: str) -> Condition:
    """The harder of the two images' conditions."""
    return HARDNESS[max(HARDNESS.index(Condition(a)), HARDNESS.index(Condition(b)))]


def pair_conditions(image_conditions: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Vectorised :func:`pair_condition` over pairs (``rows[k]``, ``cols[k]``) of images whose
    conditions are ``image_conditions`` (str array); returns a str array."""
    rank = np.asarray([HARDNESS.index(Condition(c)) for c in image_conditions], dtype=np.int8)
    names = np.asarray([c.value for c in HARDNESS])
    return names[np.maximum(rank[rows], rank[cols])]
