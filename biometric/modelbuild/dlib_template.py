"""Where MTCNN's five landmarks fall in dlib's 150x150 face chip.

dlib's ResNet was trained on chips cut by ``get_face_chip_details`` from dlib's own 5-point
landmarks (eye corners and the base of the nose), which this pipeline does not compute. Instead,
the pipeline aligns MTCNN's landmarks (eye centres, nose tip, mouth corners) onto a template:
this module measures that template by mapping MTCNN's landmarks of the parity fixture's faces
into the chip frame dlib computed for them, and taking the per-point median. The result is
recorded in the build (``DLIB_MTCNN_TEMPLATE``); ``tests/test_dlib_parity.py`` re-derives it.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from biometric.decode import read_image
from biometric.modelbuild import dlib_chip


def derive_template(fixture: Path, data_dir: Path, detect) -> tuple[np.ndarray, int]:
    """Median MTCNN landmark positions in dlib's chip frame, and the number of faces used.

    ``detect`` is a callable ``rgb -> list[Face]`` (the pipeline's detection stage).
    """
    reference = json.loads(fixture.read_text())
    points = []
    for face in reference["faces"]:
        rgb = read_image(data_dir / face["image"]).rgb
        pad = int(face["padding"]["px"])
        if pad:
            rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        shape = np.asarray(face["landmarks"], dtype=np.float64)
        found = detect(rgb)
        if not found:
            continue
        centre = shape.mean(axis=0)
        nearest = min(found, key=lambda f: float(np.linalg.norm(np.array(f.center) - centre)))
        to_chip = dlib_chip.image_to_chip_matrix(dlib_chip.get_face_chip_details(shape))
        points.append(np.c_[nearest.landmarks, np.ones(5)] @ to_chip.T)
    return np.median(np.asarray(points), axis=0), len(points)
