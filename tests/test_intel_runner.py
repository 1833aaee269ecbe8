"""The runner judges identified software with the dated store: fresh data gives verdicts,
data older than the limit gives "vulnerability data out of date" and leaves verdicts alone.

The collector here is a small one that names software on one address (the real collectors'
identification is tested against the lab); the store and the rules are the real ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import ClassVar

import pytest
from sqlalchemy import select

from riskiturva.checks import load_registry
from riskiturva.collector import (
    FindingDraft,
    ScanContext,
    ScanTask,
    SubjectObservation,
    SubjectStatus,
)
from riskiturva.config import AssetKind
from riskiturva.intel.software import Confidence, Software, SoftwareSighting, cpe_name
from riskiturva.intel.update import import_directory
from riskiturva.models import Finding, FindingEvent, ScanRun
from riskiturva.period import Month
from riskiturva.reports.render import organisation_html
from riskiturva.runner import build_context, run_collector
from riskiturva.views import NotVisible, organisation, organisation_report, software
from riskiturva.views.software import patch_status
from tests.intel_data import DAY, feeds

EXIM = Software(
    "Exim",
    cpe_name("exim", "exim", "4.89"),
    "SMTP greeting: ESMTP Exim 4.89",
    Confidence.HIGH,
    "4.89",
)
PHP = Software(
    "PHP", cpe_name("php", "php", "7.4.33"), "X-Powered-By: PHP/7.4.33", Confidence.HIGH, "7.4.33"
)


class NamingCollector:
    """Sees `software` on 127.60.2.10:25/tcp and raises nothing of its own."""

    name: ClassVar[str] = "naming"
    asset_kinds: ClassVar[frozenset[AssetKind]] = frozenset({AssetKind.IP})
    address_kinds: ClassVar[frozenset[AssetKind]] = frozenset()
    check_ids: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *software: Software):
        self.seen = software

    def collect(self, task: ScanTask, context: ScanContext) -> Iterable[SubjectObservation]:
        for target in task.targets:
            yield SubjectObservation(target.address, target.asset, SubjectStatus.OK, facts={})

    def judge(self, observation: SubjectObservation) -> list[FindingDraft]:
        return []

    def software(self, observation: SubjectObservation) -> list[SoftwareSighting]:
        return [
            SoftwareSighting(f"{observation.subject}:25/tcp", s, "nc 127.60.2.10 25")
            for s in self.seen
        ]


def scan(sessions, config, collector, now: dt.datetime):
    context = build_context(config, sessions=sessions, clock=lambda: now)
    return run_collector(sessions, config, collector, context=context, organisations=["rapala"])


def open_findings(sessions) -> dict[tuple[str, str], Finding]:
    with sessions() as session:
        return {
            (f.check_id, f.subject): f
            for f in session.scalars(select(Finding).where(Finding.status == "open"))
        }


def test_fresh_data_gives_verdicts_with_their_evidence(sessions, minimal_config, tmp_path):
    import_directory(sessions, feeds(tmp_path), now=DAY)
    report = scan(sessions, minimal_config, NamingCollector(EXIM), DAY)
    assert report.status == "ok" and report.message is None
    assert report.vulnerability_data["status"] == "ok"
    subject = "127.60.2.10:25/tcp#exim:exim"
    assert set(open_findings(sessions)) == {
        ("software.kev.ransomware", subject),
        ("software.kev.present", subject),
        ("software.eol.past", subject),
    }
    kev = open_findings(sessions)[("software.kev.present", subject)]
    assert (kev.category, kev.severity, kev.target) == ("software", "critical", "127.60.2.10")
    assert kev.reproduce == "nc 127.60.2.10 25"


def test_data_older_than_the_limit_records_out_of_date_instead_of_verdicts(
    sessions, minimal_config, tmp_path
):
    # Given a first scan judged with fresh data: Exim is known-exploited and past its end
    import_directory(sessions, feeds(tmp_path), now=DAY)
    scan(sessions, minimal_config, NamingCollector(EXIM), DAY)
    # And feeds that are 30 days old by the time of the next scan (nobody updated them)
    later = DAY + dt.timedelta(days=30)
    # When the next scan sees Exim and PHP 7.4 too
    report = scan(sessions, minimal_config, NamingCollector(EXIM, PHP), later)
    # Then the run says the data is out of date, and why, instead of judging
    assert report.message.startswith("vulnerability data out of date: ")
    assert "data as of 2026-12-01 (30 days old, the limit is 14)" in report.message
    assert report.vulnerability_data["status"] == "out_of_date"
    assert set(report.vulnerability_data["not_judged"]) == {
        "software.kev.ransomware", "software.kev.present", "software.kev.unconfirmed",
        "software.epss.high", "software.eol.past", "software.eol.extended_support",
        "software.version.major_behind",
    }  # fmt: skip
    with sessions() as session:
        run = session.get(ScanRun, report.run_id)
        assert run.message == report.message
        assert run.counts["vulnerability_data"]["status"] == "out_of_date"
    # And no new verdict was drawn (PHP 7.4), while the earlier ones stay open, unresolved
    assert {c for c, _ in open_findings(sessions)} == {
        "software.kev.ransomware", "software.kev.present", "software.eol.past",
    }  # fmt: skip
    # When the feeds are updated and the next scan no longer sees Exim
    import_directory(sessions, feeds(tmp_path, as_of=later), now=later)
    report = scan(sessions, minimal_config, NamingCollector(PHP), later)
    # Then Exim's findings resolve and PHP's end of life is found
    assert report.message is None
    assert set(open_findings(sessions)) == {("software.eol.past", "127.60.2.10:25/tcp#php:php")}


def test_a_feed_update_alone_adds_no_events_to_unchanged_findings(
    sessions, minimal_config, tmp_path
):
    import_directory(sessions, feeds(tmp_path), now=DAY)
    scan(sessions, minimal_config, NamingCollector(EXIM), DAY)
    with sessions() as session:
        before = session.query(FindingEvent).count()
    # The data's date is refreshed in the evidence, but that is no change of the finding
    later = DAY + dt.timedelta(days=1)
    import_directory(sessions, feeds(tmp_path, as_of=later), now=later)
    scan(sessions, minimal_config, NamingCollector(EXIM), later)
    with sessions() as session:
        assert session.query(FindingEvent).count() == before
    kev = open_findings(sessions)[("software.kev.present", "127.60.2.10:25/tcp#exim:exim")]
    assert kev.evidence["data_as_of"]["kev"] == "2026-12-02"


def test_without_any_data_the_run_says_to_update_it(sessions, minimal_config):
    report = scan(sessions, minimal_config, NamingCollector(EXIM), DAY)
    assert report.message.startswith("vulnerability data missing: ")
    assert "riskiturva intel update" in report.message
    assert open_findings(sessions) == {}


def test_the_managers_line_counts_kev_age_and_systems_past_support(
    sessions, minimal_config, tmp_path
):
    import_directory(sessions, feeds(tmp_path), now=DAY)
    scan(sessions, minimal_config, NamingCollector(EXIM, PHP), DAY)
    later = DAY + dt.timedelta(days=12)
    with sessions() as session:
        rapala = organisation(session, ["rapala"], "rapala")
        status = patch_status(session, rapala, today=later.date(), registry=load_registry())
    assert (status.known_exploited, status.ransomware, status.oldest_open_days) == (2, 1, 12)
    assert status.past_end_of_support == 1  # one system, two products
    assert status.line("en") == (
        "2 known-exploited vulnerabilities, oldest open for 12 days; 1 system past end of support"
    )
    assert status.line("fi") == (
        "2 tunnetusti hyödynnettyä haavoittuvuutta, vanhin avoinna 12 päivää; "
        "1 järjestelmä ilman tietoturvatukea"
    )
    assert status.line("sv") == (
        "2 kända utnyttjade sårbarheter, den äldsta öppen i 12 dagar; 1 system utan säkerhetsstöd"
    )


def test_the_managers_line_when_all_is_well(sessions, minimal_config):
    scan(sessions, minimal_config, NamingCollector(), DAY)  # nothing identified
    with sessions() as session:
        rapala = organisation(session, ["rapala"], "rapala")
        status = patch_status(session, rapala, today=DAY.date(), registry=load_registry())
    assert status.line("en") == "no known-exploited vulnerabilities; no systems past end of support"


def test_the_software_view_lists_kev_with_their_fix_by_days_and_the_data_used(
    sessions, minimal_config, tmp_path
):
    # Given Exim 4.89 (known-exploited, one CVE used by ransomware) and PHP 7.4 seen on DAY
    import_directory(sessions, feeds(tmp_path), now=DAY)
    scan(sessions, minimal_config, NamingCollector(EXIM, PHP), DAY)
    # When the staff read the software page 20 days later
    later = DAY + dt.timedelta(days=20)
    with sessions() as session:
        view = software(session, ["rapala"], "rapala", now=later, registry=load_registry())
    # Then the known-exploited ones come first, ransomware first, due 14 days after first seen
    kev = view.known_exploited
    assert [f.check_id for f in kev] == ["software.kev.ransomware", "software.kev.present"]
    assert all(f.due == DAY.date() + dt.timedelta(days=14) and f.overdue for f in kev)
    assert kev[0].vulnerabilities[0].ransomware and kev[0].cves
    assert all(v.kev_added and v.kev_due for f in kev for v in f.vulnerabilities)
    past = [f for f in view.end_of_support if f.check_id == "software.eol.past"]
    assert {(f.software, f.target) for f in past} == {
        ("Exim", "127.60.2.10"),
        ("PHP", "127.60.2.10"),
    }
    # And the vulnerability data the scan judged with is stated
    assert view.data is not None and view.data.usable
    assert view.data.as_of["kev"] == DAY.date()
    assert view.status.line("en").startswith(
        "2 known-exploited vulnerabilities, oldest open for 20 days"
    )
    # When a reader outside the organisation asks, it is not there
    with sessions() as session, pytest.raises(NotVisible):
        software(session, ["other"], "rapala", now=later, registry=load_registry())


def test_the_software_view_says_when_the_last_scan_had_stale_data(
    sessions, minimal_config, tmp_path
):
    import_directory(sessions, feeds(tmp_path), now=DAY)
    scan(sessions, minimal_config, NamingCollector(EXIM), DAY + dt.timedelta(days=30))
    with sessions() as session:
        view = software(
            session, ["rapala"], "rapala", now=DAY + dt.timedelta(days=30), registry=load_registry()
        )
    assert view.data is not None and not view.data.usable
    assert view.data.status == "out_of_date" and "software.kev.present" in view.data.not_judged
    assert view.findings == ()


def test_the_monthly_report_carries_the_managers_line(sessions, minimal_config, tmp_path):
    # Given Exim 4.89 and PHP 7.4 found on DAY (1 December)
    import_directory(sessions, feeds(tmp_path), now=DAY)
    scan(sessions, minimal_config, NamingCollector(EXIM, PHP), DAY)
    # When December's report is made on 1 January
    with sessions() as session:
        report = organisation_report(
            session,
            "rapala",
            Month(2026, 12),
            visible=["rapala"],
            now=dt.datetime(2027, 1, 1, 6, tzinfo=dt.UTC),
            registry=load_registry(),
        )
    # Then it counts at the month's end, and the Finnish report says so under the answer
    assert report.patch.line("fi") == (
        "2 tunnetusti hyödynnettyä haavoittuvuutta, vanhin avoinna 30 päivää; "
        "1 järjestelmä ilman tietoturvatukea"
    )
    assert report.patch.line("fi") in organisation_html(report, "fi")
