"""The settings object: the documented BIOMETRIC_* names and defaults, read once, and the
hand-over of `biometric serve`'s settings to its worker processes (no model, no photo)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

import biometric.settings as library
from api.settings import HANDOVER_VAR, Settings
from biometric import config, i18n
from biometric.chip.policy import ChipAuthPolicy
from biometric.settings import REPO_ROOT, LibrarySettings


def test_defaults_are_the_documented_ones(monkeypatch) -> None:
    for name in ("DATA_DIR", "MODELS_DIR", "MODEL_CACHE", "INDEX_DIR", "LOCALE", "CHIP_AUTH",
                 "AUDIT_KEY_FILE", "ERASURE_VACUUM", "DATABASE_URL"):
        monkeypatch.delenv(f"BIOMETRIC_{name}", raising=False)
    s = LibrarySettings()
    assert s.models_dir == REPO_ROOT / "models" and s.model_cache_dir == s.models_dir / "cache"
    assert s.index_dir == REPO_ROOT / "var" / "index" and s.database_url is None
    assert s.locale == "vi" and s.chip_auth is ChipAuthPolicy.WARN
    assert s.audit_key_path == REPO_ROOT / "var" / "audit" / "signing.key"
    assert s.erasure_vacuum == "full"


def test_environment_names_and_normalisation(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BIOMETRIC_MODELS_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("BIOMETRIC_DATA_DIR", "")  # empty: unset, as before
    monkeypatch.setenv("BIOMETRIC_LOCALE", " EN ")
    monkeypatch.setenv("BIOMETRIC_CHIP_AUTH", "block")
    s = LibrarySettings()
    assert s.models_dir == tmp_path / "m" and s.model_cache_dir == tmp_path / "m" / "cache"
    assert s.data_dir == LibrarySettings.model_fields["data_dir"].default
    assert s.locale == "en" and s.chip_auth is ChipAuthPolicy.BLOCK
    monkeypatch.setenv("BIOMETRIC_LOCALE", "fr")
    with pytest.raises(ValidationError):
        LibrarySettings()


def test_read_once_and_installed(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(library, "_current", None)
    monkeypatch.setenv("BIOMETRIC_INDEX_DIR", str(tmp_path / "a"))
    assert config.index_dir() == tmp_path / "a"
    monkeypatch.setenv("BIOMETRIC_INDEX_DIR", str(tmp_path / "b"))
    assert config.index_dir() == tmp_path / "a"  # read once per process
    previous = library.install(LibrarySettings(index_dir=tmp_path / "c", locale="en"))
    assert config.index_dir() == tmp_path / "c" and i18n.default_locale() == "en"
    assert previous.index_dir == tmp_path / "a"


def test_serve_hands_its_settings_to_the_workers(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BIOMETRIC_DATABASE_URL", "sqlite:////from/the/environment.db")
    given = Settings(database_url=f"sqlite:///{tmp_path / 'cli.db'}", verify_workers=0,
                     operating_point=tmp_path / "site.json")
    monkeypatch.setenv(HANDOVER_VAR, given.model_dump_json())
    assert Settings.handed_over() == given  # the command line wins over the environment
    monkeypatch.delenv(HANDOVER_VAR)
    assert Settings.handed_over().database_url == "sqlite:////from/the/environment.db"
