"""The message catalogues: every message in both languages, same placeholders, every key the
code and the pages use present, Accept-Language negotiation."""

from __future__ import annotations

import re
import string

import pytest

from api.ui.routes import STATIC_DIR
from biometric import i18n
from biometric.decide import RetakeReason
from biometric.guidance import Instruction
from biometric.verification import CHIP_NOT_CHECKED, CHIP_REFUSED

VIETNAMESE_LETTERS = re.compile(
    r"[ăâđêôơưáàảãạấầẩẫậắằẳẵặéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ]"
)


def _catalogue(locale: str) -> dict[str, str]:
    return {m.id: m.string for m in i18n.read_catalog(locale) if m.id}


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def test_every_message_exists_in_both_languages_with_the_same_placeholders() -> None:
    vi, en = _catalogue("vi"), _catalogue("en")
    assert set(vi) == set(en), f"only in vi: {set(vi) - set(en)}; only in en: {set(en) - set(vi)}"
    empty = [k for k in vi if not vi[k] or not en[k]]
    assert not empty, f"untranslated: {empty}"
    mismatched = [k for k in vi if _fields(vi[k]) != _fields(en[k])]
    assert not mismatched, f"placeholders differ: {mismatched}"


def test_vietnamese_is_written_with_diacritics() -> None:
    vi = _catalogue("vi")
    sentences = {k: v for k, v in vi.items() if k.startswith(("reason.", "guide.", "decision."))}
    plain = [k for k, v in sentences.items() if not VIETNAMESE_LETTERS.search(v.lower())]
    assert not plain, f"Vietnamese messages without Vietnamese letters: {plain}"


def test_codes_used_by_the_library_have_messages() -> None:
    keys = set(_catalogue("en"))
    needed = {f"reason.{r.value}" for r in RetakeReason} | {f"guide.{i.value}" for i in Instruction}
    needed |= {f"reason.{code}" for code in (CHIP_REFUSED, CHIP_NOT_CHECKED)}
    needed |= {f"decision.{d}" for d in ("match", "no_match", "retake", "refused")}
    assert needed <= keys, needed - keys


def test_keys_used_by_the_pages_exist() -> None:
    keys = set(_catalogue("en"))
    used: set[str] = set()
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r'data-i18n(?:-[a-z-]+)?="([a-z0-9_.]+)"', text))
        # Whole keys only: t("guide." + code) builds its key from a code (checked above).
        used |= set(re.findall(r'\bt\("([a-z0-9_.]+)"\s*[,)]', text))
        used |= set(re.findall(r'I18n\.set\([^,]+,\s*"([a-z0-9_.]+)"', text))
    assert used, "the pages use the catalogue"
    assert used <= keys, used - keys


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("en-US,en;q=0.9", "en"),
        ("vi-VN, en;q=0.5", "vi"),
        ("fr, en;q=0.1", "en"),
        ("en;q=0.2, vi;q=0.8", "vi"),
        ("fr", "vi"),  # nothing we have: the default
        ("", "vi"),
        ("en;q=0", "vi"),
    ],
)
def test_accept_language(header: str, expected: str) -> None:
    assert i18n.negotiate(header, "vi") == expected


def test_translate_formats_and_falls_back() -> None:
    assert i18n.translate("guide.countdown", "vi", n=3) == "Chụp ảnh sau 3…"
    assert i18n.translate("guide.countdown", "en", n=2) == "Taking the photo in 2…"
    assert i18n.translate("no.such.key", "vi") == "no.such.key"
    with pytest.raises(i18n.UnknownLocale):
        i18n.read_catalog("fr")
