"""The HTML screening report: a Jinja2 template with autoescaping, in Vietnamese by default
(English by switch), numbers in the locale's format (Babel). The screening result is constructed
(labelled: SYNTHETIC ids and scores); the thumbnails come from real shared photos."""

from __future__ import annotations

from pathlib import Path

from biometric.gallery.report import write_report
from biometric.gallery.screening import ScreeningResult
from biometric.i18n import translate


def _result(fr_dir: Path) -> ScreeningResult:
    ids = fr_dir / "identities"
    return ScreeningResult(
        enrolled_now=1234, skipped_already_enrolled=0, failures=[],
        pairs=[{"citizen_a": "900000000001", "citizen_b": "<b>900000000002</b>",
                "score": 0.7125}],
        clusters=[["900000000001", "<b>900000000002</b>"]], cases_opened=1,
        threshold=0.6131, fmr=1e-3, gallery_size=1234,
        paths={"900000000001": str(ids / "obama/obama.jpg"),
               "<b>900000000002</b>": str(ids / "obama/obama2.jpg")},
    )


def test_report_is_vietnamese_escaped_and_formatted(tmp_path: Path, fr_dir: Path,
                                                    pipeline) -> None:
    page = write_report(_result(fr_dir), tmp_path / "vi", pipeline)["html"].read_text()
    assert '<html lang="vi">' in page and translate("report.title", "vi") in page
    assert "1.234" in page and "0,6131" in page  # Vietnamese grouping and decimal comma
    assert "<b>900000000002</b>" not in page and "&lt;b&gt;900000000002&lt;/b&gt;" in page
    assert "Duplicate screening report" not in page and "threshold" not in page
    assert "data:image/jpeg;base64," in page
    english = write_report(_result(fr_dir), tmp_path / "en", pipeline, "en")["html"].read_text()
    assert '<html lang="en">' in english and "Duplicate screening report" in english
    assert "1,234" in english and "0.6131" in english
