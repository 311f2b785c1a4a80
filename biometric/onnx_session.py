"""One place that opens onnxruntime sessions, so thread settings are the same for every model."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from biometric.errors import ModelError


def open_session(path: Path, threads: int = 1) -> ort.InferenceSession:
    if not path.is_file():
        raise ModelError(f"model file {path} is missing; run `biometric models build`")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    # Requests run in parallel on a thread pool; inter-op parallelism would oversubscribe cores.
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if threads > 1:
        # Each model has its own thread pool, and an idle pool spins by default: with 2 threads
        # on 2 cores the next model's work waited for the last one's spinning threads (a
        # verification after the capture: 55 ms wall, 110 ms CPU spinning; 28 ms, 41 ms not).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
