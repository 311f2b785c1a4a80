"""Where things live, from this process's settings (:mod:`biometric.settings`: each location is
a ``BIOMETRIC_*`` variable, read once)."""

from __future__ import annotations

from pathlib import Path

from biometric.settings import REPO_ROOT, current

__all__ = ["REPO_ROOT", "cache_dir", "data_dir", "index_dir", "model_cache_dir", "models_dir"]


def data_dir() -> Path:
    """Shared real face photos (read-only; never copied into the repo)."""
    return current().data_dir


def models_dir() -> Path:
    """Manifest and built ONNX files."""
    return current().models_dir


def model_cache_dir() -> Path:
    """Downloaded source packages (npm / PyPI archives) the models are converted from."""
    return current().model_cache_dir


def index_dir() -> Path:
    """Saved FAISS indexes (derived from the store; safe to delete: they are rebuilt)."""
    return current().index_dir


def cache_dir() -> Path:
    """Derived, disposable files (embeddings of the shared photos, keyed by model version)."""
    return current().cache_dir
