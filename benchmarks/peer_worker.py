"""Peer worker: run *inside the dlib venv* (not this project's), never imported by the project.

    /tmp/peervenv/bin/python benchmarks/peer_worker.py

A line protocol, so the benchmark can interleave the two systems frame by frame in one run:
one JSON request per stdin line, {"path": str, "upsample": 1, "model": "hog"}; one JSON result
per stdout line, {"path", "faces", "encoding" | null, "width", "height", "load_ms", "detect_ms",
"encode_ms", "cpu_ms"}. The first line written is {"versions": {...}}.

Uses only face_recognition's public API: load_image_file, face_locations(model="hog"),
face_encodings. The largest detected face is the subject.
"""

from __future__ import annotations

import json
import sys
import time


def handle(face_recognition, request: dict) -> dict:
    upsample = int(request.get("upsample", 1))
    model = request.get("model", "hog")
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    image = face_recognition.load_image_file(request["path"])
    t1 = time.perf_counter()
    boxes = face_recognition.face_locations(image, upsample, model)
    t2 = time.perf_counter()
    encoding = None
    if boxes:
        # (top, right, bottom, left); the largest face is the subject
        box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
        encoding = [float(v) for v in face_recognition.face_encodings(image, [box])[0]]
    t3 = time.perf_counter()
    return {
        "path": request["path"],
        "faces": len(boxes),
        "encoding": encoding,
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "load_ms": (t1 - t0) * 1000.0,
        "detect_ms": (t2 - t1) * 1000.0,
        "encode_ms": (t3 - t2) * 1000.0,
        "cpu_ms": (time.process_time() - cpu0) * 1000.0,
    }


def main() -> int:
    import dlib
    import face_recognition

    versions = {
        "dlib": getattr(dlib, "__version__", "?"),
        "face_recognition": getattr(face_recognition, "__version__", "?"),
        "dlib_uses_avx": bool(getattr(dlib, "USE_AVX_INSTRUCTIONS", False)),
        "python": sys.version.split()[0],
    }
    print(json.dumps({"versions": versions}), flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(handle(face_recognition, json.loads(line))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
