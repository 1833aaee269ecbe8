"""The monthly reports of the lab estate after two real scans, in three languages.

The collectors judge certificates and DNSSEC signatures by the clock, and the lab makes
them today, so both scans run at the real time; the first scan's rows are then moved back
into the previous month (runs, events, first/last seen, subject states, its snapshot), as
if it had run then. Between the scans one planted weakness is fixed (Rapala publishes
security.txt) and one appears (Hyvälä's security.txt goes missing), so the month has
something improved and something worse.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from riskiturva import db
from riskiturva.checks import load_registry
from riskiturva.collector import discover_collectors
from riskiturva.config import Config, load_config
from riskiturva.history import take_snapshots
from riskiturva.models import Finding, FindingEvent, ScanRun, SubjectState
from riskiturva.period import Month
from riskiturva.reports.render import organisation_html, pdf_from_html, portfolio_html
from riskiturva.runner import run_collector
from riskiturva.scoring import format_score
from riskiturva.store import make_engine, session_factory
from riskiturva.views.period import OrganisationReport, organisation_report, portfolio_report

pytestmark = [pytest.mark.lab, pytest.mark.slow]

LANGUAGES = ("fi", "sv", "en")
FIXED = ("web.security_txt.missing", "www.rapala.test")
BROKEN = ("web.security_txt.missing", "www.hyvala.test")


@dataclass(frozen=True)
class ScannedLab:
    sessions: sessionmaker[Session]
    config: Config
    month: Month
    now: dt.datetime

    @property
    def visible(self) -> list[str]:
        return [o.slug for o in self.config.organisations]


def _scan_everything(sessions: sessionmaker[Session], config: Config) -> dt.datetime:
    for collector in discover_collectors().values():
        run_collector(sessions, config, collector, trigger="test")
    return dt.datetime.now(dt.UTC)


def _move_back(session: Session, shift: dt.timedelta) -> None:
    """Every timestamp written so far (the first scan's) moves `shift` into the past."""
    columns = {
        ScanRun: ("started_at", "finished_at"),
        FindingEvent: ("at",),
        Finding: ("first_seen", "last_seen", "resolved_at"),
        SubjectState: ("last_scanned_at", "last_success_at"),
    }
    for model, names in columns.items():
        for row in session.scalars(select(model)):
            for name in names:
                if getattr(row, name) is not None:
                    setattr(row, name, getattr(row, name) - shift)


@contextmanager
def _security_txt_swapped(lab_directory: Path) -> Iterator[None]:
    """Rapala publishes security.txt, Hyvälä's disappears; both undone afterwards."""
    rapala = next(lab_directory.rglob("html/www.rapala.test")) / ".well-known" / "security.txt"
    hyvala = next(lab_directory.rglob("html/www.hyvala.test")) / ".well-known" / "security.txt"
    kept = hyvala.read_bytes()
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=300)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rapala.parent.mkdir(parents=True, exist_ok=True)
    rapala.write_text(f"Contact: mailto:tietoturva@rapala.test\nExpires: {expires}\n")
    hyvala.unlink()
    try:
        yield
    finally:
        rapala.unlink()
        hyvala.write_bytes(kept)


@pytest.fixture(scope="module")
def scanned(lab, tmp_path_factory) -> ScannedLab:
    folder = tmp_path_factory.mktemp("reports-lab")
    text = lab.config_path.read_text(encoding="utf-8")
    path = folder / "riskiturva.toml"
    path.write_text(text.replace('data_dir = "data"', f'data_dir = "{folder / "data"}"', 1))
    config = load_config(path)
    engine = make_engine(config.settings.effective_database_url)
    db.upgrade(engine)
    sessions = session_factory(engine)

    first = _scan_everything(sessions, config)
    shift = dt.timedelta(days=first.day + 3)  # into the last days of the previous month
    with sessions.begin() as session:
        _move_back(session, shift)
    take_snapshots(sessions, config, (first - shift).date(), now=first - shift)

    with _security_txt_swapped(lab.directory):
        now = _scan_everything(sessions, config)
    take_snapshots(sessions, config, now.date(), now=now)
    yield ScannedLab(sessions, config, Month.of(now.date()), now)
    engine.dispose()


def _report(scanned: ScannedLab, slug: str) -> OrganisationReport:
    with scanned.sessions() as session:
        return organisation_report(
            session,
            slug,
            scanned.month,
            visible=scanned.visible,
            now=scanned.now,
            registry=load_registry(),
        )


def _pdf_text(pdf: bytes, folder: Path) -> str:
    path = folder / "report.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    return " ".join(text.split())


def test_the_month_shows_the_fix_and_the_new_problem(scanned):
    rapala, hyvala = _report(scanned, "rapala"), _report(scanned, "hyvala")
    assert FIXED in {(f.check_id, f.subject) for f in rapala.resolved}
    assert BROKEN in {(f.check_id, f.subject) for f in hyvala.new}
    # Everything else was already there in the previous month: nothing else is "new".
    assert {(f.check_id, f.subject) for f in hyvala.new} == {BROKEN}
    assert rapala.previous is not None and rapala.previous.month == scanned.month.previous()
    assert rapala.trend[-2] == rapala.previous and rapala.trend[-1].score == rapala.score.score


def test_coverage_counts_the_lab_assets_and_the_two_months(scanned):
    rapala = _report(scanned, "rapala")
    configured = next(o for o in scanned.config.organisations if o.slug == "rapala")
    assert len(rapala.coverage.assets) == len({(a.kind, a.value) for a in configured.assets})
    assert rapala.coverage.runs == len(discover_collectors())  # this month's runs only
    assert rapala.coverage.assets_complete > 0


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_municipality_renders_a_valid_pdf_with_its_key_figures(scanned, language, tmp_path):
    registry = load_registry()
    for slug in scanned.visible:
        report = _report(scanned, slug)
        pdf = pdf_from_html(organisation_html(report, language))
        assert pdf.startswith(b"%PDF-")
        text = _pdf_text(pdf, tmp_path)
        score = format_score(report.score.tenths, language)
        assert f"{report.score.grade} ({score}/100)" in text, slug
        assert report.names[language] in text
        for action in report.top_actions:
            assert registry[action.check_id].title_in(language)[:30] in text
        unwrapped = text.replace(" ", "")  # a long subject may wrap inside its cell
        for row in report.appendix:
            assert row.subject in unwrapped
    rapala = _pdf_text(
        pdf_from_html(organisation_html(_report(scanned, "rapala"), language)), tmp_path
    )
    assert registry[FIXED[0]].title_in(language) in rapala  # under "what improved"


def test_the_partners_portfolio_shows_who_worsened(scanned, tmp_path):
    partner = scanned.config.partners[0]
    with scanned.sessions() as session:
        report = portfolio_report(
            session,
            partner.slug,
            scanned.month,
            visible=scanned.visible,
            now=scanned.now,
            registry=load_registry(),
        )
    assert {r.organisation for r in report.rows} == set(partner.organisations)
    hyvala = next(r for r in report.rows if r.organisation == "hyvala")
    assert hyvala.delta is not None and hyvala.delta < 0  # security.txt went missing
    assert hyvala in report.worsened
    text = _pdf_text(pdf_from_html(portfolio_html(report, "fi", partner.name)), tmp_path)
    assert re.search(r"Hyvälän kunta: [\d,]+ → [\d,]+ \(−[\d,]+\)", text)
