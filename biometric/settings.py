"""The library's settings, declared once: every ``BIOMETRIC_*`` variable the library reads.

A process reads them from the environment once (:func:`current`, on first use) or is handed an
object built by its caller (:func:`install`: the API app installs its own settings, which extend
these, so the library and the service agree). Names and defaults are the ones README documents;
an empty variable counts as unset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from biometric.chip.policy import ChipAuthPolicy

REPO_ROOT = Path(__file__).resolve().parent.parent
Locale = Literal["vi", "en"]


class LibrarySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BIOMETRIC_", extra="ignore", env_ignore_empty=True
    )

    # Shared real face photos (read-only; never copied into the repo).
    data_dir: Path = (REPO_ROOT.parent / "shared" / "data").resolve()
    # Manifest and built ONNX files.
    models_dir: Path = REPO_ROOT / "models"
    # Downloaded source packages the models are converted from (None: models_dir/cache).
    model_cache: Path | None = None
    # Saved FAISS indexes (derived from the store; safe to delete: they are rebuilt).
    index_dir: Path = REPO_ROOT / "var" / "index"
    # Derived, disposable files (embeddings of the shared photos, keyed by model version).
    cache_dir: Path = REPO_ROOT / "var" / "cache"
    database_url: str | None = None  # None: SQLite at var/biometric.db
    # A site's operating-point file (`biometric calibrate`); None: the manifest's thresholds.
    operating_point: Path | None = None
    # Passive authentication of chip files (dg2 + sod parts): policy and the CSCA trust store
    # (folder or file of CSCA certificates, master lists, CRLs; see README).
    chip_auth: ChipAuthPolicy = ChipAuthPolicy.WARN
    csca_dir: Path | None = None
    # Language of staff-facing texts when a request's Accept-Language names neither vi nor en.
    locale: Locale = "vi"
    # Audit checkpoints (biometric.store.audit): the Ed25519 signing key, kept where the
    # database's users cannot read it (None: var/audit/signing.key, created on first start), and
    # the append-only file of signed chain heads (None: var/audit/checkpoints.jsonl).
    audit_key_file: Path | None = None
    audit_checkpoints: Path | None = None
    # PostgreSQL after an erasure: "full" (VACUUM FULL: no byte of the erased rows left in the
    # table files, measured in tests/test_erasure.py; rewrites the tables under an exclusive
    # lock) or "plain" (VACUUM: rows unreachable, bytes may stay in free page space).
    erasure_vacuum: Literal["full", "plain"] = "full"

    @field_validator(
        "data_dir", "models_dir", "model_cache", "index_dir", "cache_dir", "csca_dir",
        "operating_point",
        "audit_key_file", "audit_checkpoints", mode="after",
    )
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @field_validator("locale", mode="before")
    @classmethod
    def _locale(cls, value: object) -> object:
        return value.strip().lower() or "vi" if isinstance(value, str) else value

    @property
    def model_cache_dir(self) -> Path:
        return self.model_cache or self.models_dir / "cache"

    @property
    def audit_key_path(self) -> Path:
        return self.audit_key_file or REPO_ROOT / "var" / "audit" / "signing.key"

    @property
    def audit_checkpoint_path(self) -> Path:
        return self.audit_checkpoints or REPO_ROOT / "var" / "audit" / "checkpoints.jsonl"


_current: LibrarySettings | None = None


def current() -> LibrarySettings:
    """This process's settings: the installed object, else the environment read once."""
    global _current
    if _current is None:
        _current = LibrarySettings()
    return _current


def install(settings: LibrarySettings) -> LibrarySettings:
    """Make ``settings`` this process's settings (the service installs its own while it runs);
    returns the ones they replace."""
    global _current
    previous, _current = current(), settings
    return previous
