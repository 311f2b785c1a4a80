"""Where things live. Every location can be overridden by an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _path_from_env(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def data_dir() -> Path:
    """Shared real face photos (read-only; never copied into the repo)."""
    return _path_from_env("BIOMETRIC_DATA_DIR", (REPO_ROOT.parent / "shared" / "data").resolve())


def models_dir() -> Path:
    """Manifest and built ONNX files."""
    return _path_from_env("BIOMETRIC_MODELS_DIR", REPO_ROOT / "models")


def model_cache_dir() -> Path:
    """Downloaded source packages (npm / PyPI archives) the models are converted from."""
    return _path_from_env("BIOMETRIC_MODEL_CACHE", models_dir() / "cache")


def index_dir() -> Path:
    """Saved FAISS indexes (derived from the store; safe to delete: they are rebuilt)."""
    return _path_from_env("BIOMETRIC_INDEX_DIR", REPO_ROOT / "var" / "index")


def cache_dir() -> Path:
    """Derived, disposable files (embeddings of the shared photos, keyed by model version)."""
    return _path_from_env("BIOMETRIC_CACHE_DIR", REPO_ROOT / "var" / "cache")
