"""The language of an API answer: ``Accept-Language`` when it names vi or en, else the
service's ``BIOMETRIC_LOCALE``. Codes (decision, reason and problem codes) never change with
the language; only the human-readable texts beside them do."""

from __future__ import annotations

import contextlib
from typing import Any

from starlette.requests import Request

from biometric import i18n
from biometric.decide import reason_message


def request_locale(request: Request) -> str:
    app = request.scope.get("app")
    settings = getattr(getattr(app, "state", None), "settings", None)
    default = getattr(settings, "locale", None) or i18n.default_locale()
    return i18n.negotiate(request.headers.get("accept-language"), default)


def localise_reasons(reasons: list[dict[str, Any]], locale: str) -> list[dict[str, Any]]:
    """Reasons with their ``message`` in ``locale`` (the pipeline wrote the default one); a
    code the catalogue does not know keeps the message it came with."""
    out = []
    for r in reasons:
        text = reason_message(str(r.get("code")), locale)
        out.append({**r, "message": text} if text != f"reason.{r.get('code')}" else r)
    return out


def problem_texts(
    locale: str, status: int, code: str, detail: str, params: dict[str, Any]
) -> tuple[str | None, str]:
    """Title and detail of a problem document in ``locale``. A code without a catalogue message
    keeps the detail it was raised with (developer-facing errors, e.g. validation)."""
    title_key = f"problem.title.{status}"
    title = i18n.translate(title_key, locale)
    values = dict(params)
    if isinstance(values.get("image"), str):
        values["image"] = i18n.translate(f"image.{values['image']}", locale)
    key = f"problem.{code}"
    text = i18n.translate(key, locale)
    if text != key:
        # Raised without the values its message needs: keep the detail it was raised with.
        with contextlib.suppress(KeyError, IndexError, ValueError):
            detail = text.format(**values)
    return (None if title == title_key else title), detail
