"""Peer worker: run *inside the dlib venv* (not this project's), never imported by the project.

    /tmp/dlibvenv/bin/python benchmarks/peer_worker.py request.json result.json

request.json: {"images": [paths], "upsample": 1, "model": "hog", "repeat": 1}
result.json: {"versions": {...}, "results": [{"path", "faces", "encoding" | null,
              "load_ms", "detect_ms", "encode_ms"}]}

Uses only face_recognition's public API: load_image_file, face_locations(model="hog"),
face_encodings. The largest detected face is the subject.
"""

from __future__ import annotations

import json
import sys
import time


def main(request_path: str, result_path: str) -> int:
    import dlib
    import face_recognition

    with open(request_path) as fh:
        request = json.load(fh)
    upsample = int(request.get("upsample", 1))
    model = request.get("model", "hog")
    repeat = max(1, int(request.get("repeat", 1)))
    results = []
    for path in request["images"]:
        best = None
        for _ in range(repeat):
            t0 = time.perf_counter()
            image = face_recognition.load_image_file(path)
            t1 = time.perf_counter()
            boxes = face_recognition.face_locations(image, upsample, model)
            t2 = time.perf_counter()
            encoding = None
            if boxes:
                # (top, right, bottom, left); the largest face is the subject
                box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
                encoding = [float(v) for v in face_recognition.face_encodings(image, [box])[0]]
            t3 = time.perf_counter()
            timing = {
                "load_ms": (t1 - t0) * 1000.0,
                "detect_ms": (t2 - t1) * 1000.0,
                "encode_ms": (t3 - t2) * 1000.0,
            }
            if best is None or sum(timing.values()) < sum(best[1].values()):
                best = ((len(boxes), encoding), timing)
        (faces, encoding), timing = best
        results.append(
            {
                "path": path,
                "faces": faces,
                "encoding": encoding,
                "width": int(image.shape[1]),
                "height": int(image.shape[0]),
                **timing,
            }
        )
    versions = {
        "dlib": getattr(dlib, "__version__", "?"),
        "face_recognition": getattr(face_recognition, "__version__", "?"),
        "dlib_uses_avx": bool(getattr(dlib, "USE_AVX_INSTRUCTIONS", False)),
        "python": sys.version.split()[0],
    }
    with open(result_path, "w") as fh:
        json.dump({"versions": versions, "results": results}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
