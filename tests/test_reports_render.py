"""Rendering: golden HTML in three languages, escaping, the PDF's text, charts, catalogs.

The golden files in `tests/golden/reports/` hold the synthetic estate's October report
with the chart images replaced by a placeholder; regenerate them after an intended change
of wording with `RISKITURVA_UPDATE_GOLDEN=1 pytest tests/test_reports_render.py` and read
the diff before committing.
"""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import threading
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import pytest

from riskiturva.i18n import catalog, translator
from riskiturva.reports import charts, render
from riskiturva.reports.render import (
    NO_PEERS_LABELS,
    OWNER_LABELS,
    organisation_html,
    pdf_from_html,
    portfolio_html,
)
from riskiturva.scoring import format_score
from riskiturva.views.period import organisation_report, portfolio_report
from tests.test_reports_data import HOSTILE, MONTH, NOW, REGISTRY, VISIBLE, build_estate

GOLDEN = Path(__file__).parent / "golden" / "reports"
UPDATE = os.environ.get("RISKITURVA_UPDATE_GOLDEN") == "1"
LANGUAGES = ("fi", "sv", "en")
_CHART = re.compile(r"data:image/svg\+xml;base64,[A-Za-z0-9+/=]+")


def normalised(html: str) -> str:
    """The HTML without its volatile parts (chart images depend on Matplotlib's version)."""
    return _CHART.sub("data:image/svg+xml;base64,CHART", html)


def assert_golden(name: str, html: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(normalised(html), encoding="utf-8")
    assert path.exists(), f"no golden file {name}: run with RISKITURVA_UPDATE_GOLDEN=1"
    assert normalised(html) == path.read_text(encoding="utf-8"), (
        f"{name} differs from the golden file"
    )


@pytest.fixture
def reports(sessions):
    config = build_estate(sessions)
    options = {"visible": VISIBLE, "now": NOW, "registry": REGISTRY, "config": config}
    with sessions() as session:
        return {
            "rapala": organisation_report(session, "rapala", MONTH, **options),
            "hyvala": organisation_report(session, "hyvala", MONTH, **options),
            "seutu": portfolio_report(
                session, "seutu", MONTH, visible=VISIBLE, now=NOW, registry=REGISTRY
            ),
        }


@pytest.mark.parametrize("language", LANGUAGES)
def test_organisation_report_html_matches_the_golden_file(reports, language):
    html = organisation_html(reports["rapala"], language)
    assert_golden(f"organisation-rapala-2026-10.{language}.html", html)


@pytest.mark.parametrize("language", LANGUAGES)
def test_portfolio_report_html_matches_the_golden_file(reports, language):
    html = portfolio_html(reports["seutu"], language, "Seudun ICT-palvelut")
    assert_golden(f"portfolio-seutu-2026-10.{language}.html", html)


def test_outside_world_strings_are_escaped(reports):
    html = organisation_html(reports["rapala"], "en")
    assert HOSTILE in reports["rapala"].new[1].subject
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;.rapala.test" in html
    assert "<script" not in html


def test_the_words_follow_the_language(reports):
    fi = organisation_html(reports["hyvala"], "fi")
    sv = organisation_html(reports["hyvala"], "sv")
    assert '<html lang="fi">' in fi and "Tietoturvaraportti: Hyvälän kunta" in fi
    assert "lokakuu 2026" in fi and "Pisteet nousivat 3,2 pistettä" in fi
    assert '<html lang="sv">' in sv and "Informationssäkerhetsrapport: Hyvälä kommun" in sv
    assert "oktober 2026" in sv and "Poängen steg med 3,2 poäng" in sv


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def pdf_pages(pdf: bytes, tmp_path: Path) -> int:
    path = tmp_path / "pages.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    return int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.MULTILINE).group(1))


def test_the_finnish_pdf_is_valid_and_carries_the_key_figures(reports, tmp_path):
    report = reports["rapala"]
    pdf = pdf_from_html(organisation_html(report, "fi"))
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert 2 <= pdf_pages(pdf, tmp_path) <= 4
    text = pdf_text(pdf, tmp_path)
    assert "Tietoturvaraportti: Rapalan kunta" in text
    assert "Ei vielä: arvosana F (40,5/100)" in " ".join(text.split())
    assert "Pisteet laskivat 7,4 pistettä" in " ".join(text.split())
    assert "Varmenne on vanhentunut" in text  # a priority, in the registry's Finnish
    assert "127.60.2.20:3389/tcp" in text  # the appendix
    assert HOSTILE in text  # shown as text, not run
    assert "vanha.rapala.test" in text  # coverage: not checked is not fine


def test_the_portfolio_pdf_fits_one_page(reports, tmp_path):
    pdf = pdf_from_html(portfolio_html(reports["seutu"], "sv", "Seudun ICT-palvelut"))
    assert pdf_pages(pdf, tmp_path) == 1
    text = " ".join(pdf_text(pdf, tmp_path).split())
    assert "Rapala kommun: 47,9 → 40,5 (−7,4)" in text


def test_pdf_rendering_fetches_nothing_from_outside(tmp_path):
    # Given a web server on loopback that records every request
    requests: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        # When a page names it in an image, a stylesheet and a font (as a hostile string
        # that slipped past escaping could)
        html = (
            f'<html><head><link rel="stylesheet" href="{url}/style.css">'
            f"<style>@font-face {{ font-family: x; src: url({url}/font.woff) }}</style></head>"
            f'<body><p style="font-family: x">report</p><img src="{url}/tracker.png"></body></html>'
        )
        text = pdf_text(pdf_from_html(html), tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    # Then the PDF is made and the server never hears from it
    assert "report" in text
    assert requests == []


def test_trend_chart_is_valid_svg_with_gaps_and_is_deterministic():
    labels = [f"m{i}" for i in range(12)]
    scores = [None, None, 72.0, 75.5, None, 81.0, 83.0, 85.0, 90.0, 92.0, 91.0, 95.0]
    grades = [None if s is None else "A" if s >= 90 else "B" if s >= 80 else "C" for s in scores]
    svg = charts.trend_chart(labels, scores, grades, score_label="Score")
    root = ET.fromstring(svg)  # noqa: S314  (our own Matplotlib output)
    assert root.tag.endswith("svg")
    assert svg == charts.trend_chart(labels, scores, grades, score_label="Score")
    assert charts.sparkline([None] * 12).startswith(b"<?xml")


MSGID = re.compile(r"""_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


def used_messages() -> set[str]:
    """Every msgid the templates and the reports package pass to `_`, and the labels."""
    package = resources.files("riskiturva.reports")
    sources = [package / "delivery.py", package / "render.py"]
    sources += [e for e in (package / "templates").iterdir() if e.name.endswith(".html")]
    used = {a or b for source in sources for a, b in MSGID.findall(source.read_text("utf-8"))}
    for table in (
        render.CATEGORY_MEANINGS,
        render.DECISION_LABELS,
        render.OWNER_LABELS,
        render.OBLIGATION_LABELS,
        render.POSITION_LABELS,
        render.NO_PEERS_LABELS,
    ):
        used.update(table.values())
    return used


@pytest.mark.parametrize("language", ["fi", "sv"])
def test_the_catalog_translates_every_message_the_reports_use(language):
    used = used_messages()
    assert len(used) > 50
    assert used - set(catalog(language, "reports")) == set()
    assert set(catalog(language, "reports")) - used == set(), "unused messages in the catalog"


def first_page_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "first.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", str(path), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return " ".join(text.split())


@pytest.mark.parametrize("language", ["fi", "sv"])
def test_the_first_page_answers_a_manager(reports, language, tmp_path):
    """How are we doing, compared with others, what first and by whom, which obligations:
    all on page 1, in plain words (the impact, not the check's title)."""
    report = reports["rapala"]
    _ = translator(language, "reports")
    text = first_page_text(pdf_from_html(organisation_html(report, language)), tmp_path)
    flat = text.replace(" ", "")
    assert f"{report.score.grade} ({format_score(report.score.tenths, language)}/100)" in text
    assert _("Compared with others") in text
    assert " ".join(_(NO_PEERS_LABELS["too_few"]).split()) in text
    assert _("What must be done first, and by whom") in text
    for item in report.management.plan:
        assert REGISTRY[item.action.check_id].headline_in(language).replace(" ", "") in flat
        for who in item.owners:
            assert (who.name or _(OWNER_LABELS[str(who.role)])).replace(" ", "") in flat
        assert item.action.due is not None and _.date(item.action.due) in text
    last = report.management.plan[-1]
    assert f"{report.score.grade} → {last.grade_after}" in text or last.grade_after in text
    assert _("Obligations the findings touch") in text
    for profile in report.management.obligations:
        for result in profile.results:
            if result.status == "not_met":
                assert result.requirement.title_in(language).replace(" ", "") in flat
    assert _("Not met") in text
    # Urgency is said in grades, not in fractions of a point next to "critical".
    assert "+0," not in text
