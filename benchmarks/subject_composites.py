"""Measure how large a second face is, relative to the claimant's, in two counter scenes built
from real shared photos (the evidence for ``biometric.subject.RIVAL_SIZE_RATIO``):

* ``behind``: a claimant framed as at a counter (face 45 % of a 640x480 frame's height) with a
  second real person pasted beside the claimant's head, scaled to ``s`` of the claimant's face
  height, s in 0.35-0.65 (the next person in a queue, 0.5-1.5 m further from the camera);
* ``side``: two real people at the same distance, side by side, scaled 0.8-1.2 (different head
  sizes, one leaning in);
* the real multi-face photos of ``fr_examples/multi_face``.

For each scene it runs the shipped detector and subject choice and prints, per scene kind and
scale, the measured linear size ratio sqrt(area other / area subject) of the second face (the
detector's boxes, not the pasted scale). SYNTHETIC composites of real photos; run:
``.venv/bin/python -m benchmarks.subject_composites [--data ../shared/data] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import cv2
import numpy as np

from biometric import config
from biometric.decode import read_image
from biometric.pipeline import Pipeline
from biometric.subject import SubjectPolicy, choose_subject

W, H = 640, 480
BEHIND_SCALES = (0.35, 0.45, 0.55, 0.65)
SIDE_SCALES = (0.8, 0.9, 1.0, 1.1, 1.2)


def photos(data: Path, n: int, seed: int = 7) -> list[Path]:
    """East-Asian faces first (the users' population): asian_celeb, vn_celeb_toy, kpop_idols
    and lfw_dev's East-Asian people, one photo per person."""
    people: list[Path] = []
    for name in ("asian_celeb", "vn_celeb_toy", "kpop_idols"):
        people += sorted(p for p in (data / name).iterdir() if p.is_dir())
    asian = [line.split(",")[0] for line in
             (data / "lfw_dev" / "asian_people.csv").read_text().splitlines()[1:]]
    people += [data / "lfw_dev" / a for a in asian if (data / "lfw_dev" / a).is_dir()]
    rng = random.Random(seed)
    rng.shuffle(people)
    out = []
    for person in people:
        files = sorted(f for f in person.iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if files:
            out.append(files[0])
        if len(out) == n:
            break
    return out


def biggest(pipeline: Pipeline, rgb: np.ndarray):
    faces = [f for f in pipeline.detect(rgb) if f.score >= pipeline.settings.subject.min_score]
    return max(faces, key=lambda f: f.area) if faces else None


def framed(rgb: np.ndarray, box, face_share: float, cx_frac: float, cy_frac: float) -> np.ndarray:
    """The photo warped into a WxH frame, the face ``face_share`` of the frame's height, its
    centre at (cx_frac, cy_frac) of the frame (replicated borders)."""
    x1, y1, x2, y2 = box
    scale = face_share * H / (y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    m = np.float32([[scale, 0, cx_frac * W - scale * cx], [0, scale, cy_frac * H - scale * cy]])
    return cv2.warpAffine(rgb, m, (W, H), borderMode=cv2.BORDER_REPLICATE)


def paste(canvas: np.ndarray, rgb: np.ndarray, box, face_h: float, cx: float, cy: float) -> None:
    """The head around ``box`` (1.8x the box, soft elliptical edge) scaled to a face ``face_h``
    pixels high, centred at (cx, cy) on ``canvas``."""
    x1, y1, x2, y2 = box
    scale = face_h / (y2 - y1)
    half = 0.9 * max(x2 - x1, y2 - y1)
    bx, by = (x1 + x2) / 2, (y1 + y2) / 2
    src = np.float32([[bx - half, by - half], [bx + half, by - half], [bx - half, by + half]])
    side = max(8, round(2 * half * scale))
    dst = np.float32([[0, 0], [side, 0], [0, side]])
    head = cv2.warpAffine(rgb, cv2.getAffineTransform(src, dst), (side, side),
                          borderMode=cv2.BORDER_REPLICATE)
    mask = np.zeros((side, side), np.float32)
    cv2.ellipse(mask, (side // 2, side // 2), (int(side * 0.42), int(side * 0.48)), 0, 0, 360,
                1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), side * 0.04)[..., None]
    ox, oy = round(cx - side / 2), round(cy - side / 2)
    cx0, cy0 = max(ox, 0), max(oy, 0)
    cx1, cy1 = min(ox + side, W), min(oy + side, H)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    region = canvas[cy0:cy1, cx0:cx1].astype(np.float32)
    part = head[cy0 - oy:cy1 - oy, cx0 - ox:cx1 - ox].astype(np.float32)
    alpha = mask[cy0 - oy:cy1 - oy, cx0 - ox:cx1 - ox]
    canvas[cy0:cy1, cx0:cx1] = (alpha * part + (1 - alpha) * region).astype(np.uint8)


def behind_scene(a: np.ndarray, abox, b: np.ndarray, bbox, s: float, side: int = 1):
    """Claimant ``a`` centred (face 45 % of the frame's height); person ``b``'s head above and
    beside the claimant's (``side`` 1: right, -1: left), ``s`` times the claimant's face height.
    Returns the scene and where the second face was put."""
    scene = framed(a, abox, 0.45, 0.5, 0.55)
    fh = 0.45 * H
    cx = W / 2 + side * (0.5 * fh + 0.9 * s * fh + 10)
    cy = 0.55 * H - 0.45 * fh
    paste(scene, b, bbox, s * fh, cx, cy)
    return scene, (cx, cy)


def side_scene(a: np.ndarray, abox, b: np.ndarray, bbox, s: float):
    """Two people at one distance side by side: ``a``'s face 30 % of the frame's height on the
    left, ``b``'s ``s`` times that on the right."""
    scene = framed(a, abox, 0.30, 0.30, 0.5)
    near = (0.70 * W, 0.5 * H)
    paste(scene, b, bbox, s * 0.30 * H, *near)
    return scene, near


def record(into: dict[str, list[float]], missed: dict[str, int], key: str, got) -> None:
    if got is None:
        missed[key] = missed.get(key, 0) + 1
    else:
        into.setdefault(key.split()[1], []).append(got[0])


def second_ratio(pipeline: Pipeline, scene: np.ndarray, near: tuple[float, float]):
    """(linear size ratio of the face found nearest ``near`` to the chosen subject, whether the
    subject is the claimant, i.e. not that face), or None when no second face is found."""
    faces = pipeline.detect(scene)
    choice = choose_subject(faces, W, H, SubjectPolicy(rival_size_ratio=0.0))
    if choice.subject is None:
        return None
    others = [f for f in faces if f is not choice.subject
              and f.score >= pipeline.settings.subject.min_score]
    if not others:
        return None
    other = min(others, key=lambda f: (f.center[0] - near[0]) ** 2 + (f.center[1] - near[1]) ** 2)
    ratio = (other.area / choice.subject.area) ** 0.5
    return ratio, float(np.hypot(*(np.subtract(choice.subject.center, near)))) > 1e-6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=config.data_dir())
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    pipeline = Pipeline()
    pipeline.warm_up()
    people = photos(args.data, 2 * args.pairs)
    found = []
    for path in people:
        rgb = read_image(path).rgb
        face = biggest(pipeline, rgb)
        if face is not None:
            found.append((path, rgb, face.box))
    results: dict[str, dict[str, list[float]]] = {"behind": {}, "side": {}}
    missed: dict[str, int] = {}
    for i in range(0, len(found) - 1, 2):
        (_, a, abox), (_, b, bbox) = found[i], found[i + 1]
        for s in BEHIND_SCALES:
            scene, near = behind_scene(a, abox, b, bbox, s, 1 if i % 4 == 0 else -1)
            got = second_ratio(pipeline, scene, near)
            record(results["behind"], missed, f"behind {s:.2f}", got)
        for s in SIDE_SCALES:
            scene, near = side_scene(a, abox, b, bbox, s)
            record(results["side"], missed, f"side {s:.2f}", second_ratio(pipeline, scene, near))
    real = {}
    for path in sorted((args.data / "fr_examples" / "multi_face").iterdir()):
        rgb = read_image(path).rgb
        faces = pipeline.detect(rgb)
        h, w = rgb.shape[:2]
        choice = choose_subject(faces, w, h, SubjectPolicy(rival_size_ratio=0.0))
        if choice.subject is not None:
            real[path.name] = sorted(round((f.area / choice.subject.area) ** 0.5, 3)
                                     for f in choice.rivals)
    print(f"{len(found)} photos with a face, {len(found) // 2} pairs")
    for kind, by_scale in results.items():
        for key, values in sorted(by_scale.items()):
            v = np.array(values)
            print(f"{kind:7} pasted {key}: n {len(v):3}  measured ratio min {v.min():.3f} "
                  f"p5 {np.percentile(v, 5):.3f} median {np.median(v):.3f} "
                  f"p95 {np.percentile(v, 95):.3f} max {v.max():.3f}")
    print("second face not found:", missed or "none")
    print("fr_examples/multi_face rivals (linear ratio):", real)
    if args.json:
        args.json.write_text(json.dumps({"results": results, "missed": missed, "real": real},
                                        indent=1))


if __name__ == "__main__":
    main()
