"""Staff-facing messages in Vietnamese and English from gettext catalogues.

The catalogues are ``biometric/i18n/locales/<locale>/LC_MESSAGES/messages.po``; message ids
are stable, language-neutral keys (``reason.too_dark``, ``ui.counter.title``), never English
sentences, so the API's codes and the catalogue keys stay the same in every language. The
``.po`` files are the source; they are compiled to gettext ``.mo`` data in memory by Babel
when first used (nothing generated is kept in git, and a fresh clone works as it is).

``translate(key, locale, **params)`` formats ``{name}`` placeholders with ``params``.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from biometric.settings import current

LOCALES = ("vi", "en")
DEFAULT_LOCALE = "vi"  # the counters' staff are Vietnamese
FALLBACK_LOCALE = "en"
DOMAIN = "messages"
LOCALE_DIR = Path(__file__).resolve().parent / "locales"


class UnknownLocale(ValueError):
    pass


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(locale: str) -> Catalog:
    if locale not in LOCALES:
        raise UnknownLocale(f"locale {locale!r} is not one of {', '.join(LOCALES)}")
    with po_path(locale).open("rb") as fh:
        return read_po(fh, locale=locale, domain=DOMAIN)


@cache
def _translations(locale: str) -> gettext.GNUTranslations:
    buffer = io.BytesIO()
    write_mo(buffer, read_catalog(locale))
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def default_locale() -> str:
    """This process's ``BIOMETRIC_LOCALE`` (vi or en; :mod:`biometric.settings`)."""
    return current().locale


def has(key: str, locale: str | None = None) -> bool:
    return _translations(locale or default_locale()).gettext(key) != key


def translate(key: str, locale: str | None = None, **params: object) -> str:
    """The message ``key`` in ``locale`` (default: :func:`default_locale`), falling back to
    English, then to the key itself (a missing message shows up, it does not crash a request;
    tests make sure none is missing)."""
    text = key
    for loc in (locale or default_locale(), FALLBACK_LOCALE):
        found = _translations(loc).gettext(key)
        if found != key:
            text = found
            break
    return text.format(**params) if params else text


def messages(locale: str, prefixes: tuple[str, ...]) -> dict[str, str]:
    """Every message whose key starts with one of ``prefixes`` (for the web pages)."""
    catalog = read_catalog(locale)
    return {
        m.id: m.string
        for m in catalog
        if isinstance(m.id, str) and m.id.startswith(prefixes) and m.string
    }


def negotiate(accept_language: str | None, default: str | None = None) -> str:
    """The best of :data:`LOCALES` for an ``Accept-Language`` header (RFC 9110 q-values);
    ``default`` (else :func:`default_locale`) when nothing matches."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        fields = part.strip().split(";")
        tag = fields[0].strip().lower()
        q = 1.0
        for f in fields[1:]:
            name, _, value = f.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag))
    for _, _, tag in sorted(ranked):
        primary = tag.split("-")[0]
        if primary in LOCALES:
            return primary
    return default or default_locale()
