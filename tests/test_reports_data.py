"""Report data from a small synthetic estate, built through the store's own functions.

`build_estate` is shared by the report tests: two municipalities of one partner, scanned
once in September and once in October 2026 (some findings fixed, some new, one target
timing out), with month-end score snapshots for the year before (synthetic, written as
rows: the trend needs a history the two scans cannot make).
"""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from riskiturva.checks import load_registry
from riskiturva.config import Config
from riskiturva.history import take_snapshots
from riskiturva.models import (
    Finding,
    FindingStatus,
    Organisation,
    RunStatus,
    ScanError,
    ScanRun,
    ScoreSnapshot,
    SubjectState,
)
from riskiturva.period import Month, previous_month
from riskiturva.store import NotVisible, ObservedFinding, decide, reconcile, sync_config
from riskiturva.views.period import organisation_report, portfolio_report

MONTH = Month(2026, 10)
SEPTEMBER_SCAN = dt.datetime(2026, 9, 14, 2, 15, tzinfo=dt.UTC)
OCTOBER_SCAN = dt.datetime(2026, 10, 12, 2, 15, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.UTC)
HOSTILE = '<script>alert("x")</script>.rapala.test'

ESTATE = """
[[partners]]
slug = "seutu"
name = "Seudun ICT-palvelut"
organisations = ["hyvala", "rapala"]

[[organisations]]
slug = "hyvala"
name = { fi = "Hyvälän kunta", sv = "Hyvälä kommun", en = "Municipality of Hyvälä" }
scope = { domains = ["hyvala.test"] }
report_recipients = ["johto@hyvala.test", "it@hyvala.test"]
assets = [
  { kind = "host", value = "www.hyvala.test", criticality = "high" },
  { kind = "mail_domain", value = "hyvala.test" },
]

[[organisations]]
slug = "rapala"
name = { fi = "Rapalan kunta", sv = "Rapala kommun", en = "Municipality of Rapala" }
scope = { domains = ["rapala.test"], networks = ["127.60.2.0/24"] }
report_recipients = ["hallinto@rapala.test"]
assets = [
  { kind = "host", value = "www.rapala.test", criticality = "high", tags = ["e-service"] },
  { kind = "mail_domain", value = "rapala.test" },
  { kind = "ip", value = "127.60.2.20" },
  { kind = "host", value = "vanha.rapala.test", criticality = "low" },
]
"""

# (organisation, collector, check id, subject, asset) per scan
SEPTEMBER = [
    ("hyvala", "tls", "tls.protocol.tls1_3_missing", "www.hyvala.test:443", "www.hyvala.test"),
    ("hyvala", "dns_email", "email.dmarc.policy_none", "hyvala.test", "hyvala.test"),
    ("rapala", "tls", "tls.certificate.expired", "www.rapala.test:443", "www.rapala.test"),
    ("rapala", "tls", "tls.protocol.tls1_0", "www.rapala.test:443", "www.rapala.test"),
    ("rapala", "tls", "tls.protocol.tls1_3_missing", "www.rapala.test:443", "www.rapala.test"),
    ("rapala", "dns_email", "email.dmarc.missing", "rapala.test", "rapala.test"),
    ("rapala", "services", "services.exposed.ftp", "127.60.2.20:21/tcp", "127.60.2.20"),
]
# In October Rapala closed FTP but opened RDP, and a hostile name showed up; Hyvälä fixed
# DMARC.
OCTOBER = [
    ("hyvala", "tls", "tls.protocol.tls1_3_missing", "www.hyvala.test:443", "www.hyvala.test"),
    ("rapala", "tls", "tls.certificate.expired", "www.rapala.test:443", "www.rapala.test"),
    ("rapala", "tls", "tls.protocol.tls1_0", "www.rapala.test:443", "www.rapala.test"),
    ("rapala", "tls", "tls.protocol.tls1_3_missing", "www.rapala.test:443", "www.rapala.test"),
    ("rapala", "dns_email", "email.dmarc.missing", "rapala.test", "rapala.test"),
    ("rapala", "dns_email", "email.dmarc.policy_none", HOSTILE, "rapala.test"),
    ("rapala", "services", "services.exposed.rdp", "127.60.2.20:3389/tcp", "127.60.2.20"),
]
# Scanned completely per (organisation, collector) in each scan; vanha.rapala.test times
# out in October and was never scanned before.
SCANNED_OK = {
    "hyvala": {"tls": ["www.hyvala.test:443"], "dns_email": ["hyvala.test"]},
    "rapala": {
        "tls": ["www.rapala.test:443"],
        "dns_email": ["rapala.test", HOSTILE],
        "services": ["127.60.2.20"],
    },
}
OCTOBER_TIMEOUT = ("rapala", "dns_email", "vanha.rapala.test", "vanha.rapala.test")
# Month-end scores before the scans (synthetic history for the trend).
HISTORY = {
    "hyvala": [(Month(2026, m), 80.0 + m) for m in range(1, 9)],
    "rapala": [(Month(2025, 11), 70.0), *[(Month(2026, m), 66.0 - m) for m in range(1, 9)]],
}


def estate_config() -> Config:
    return Config.model_validate(tomllib.loads(ESTATE))


def _scan(session: Session, config: Config, rows: list[tuple[str, ...]], at: dt.datetime) -> None:
    registry = load_registry()
    for collector in ("tls", "dns_email", "services"):
        run = ScanRun(
            collector=collector,
            organisations=[o.slug for o in config.organisations],
            status=RunStatus.OK,
            started_at=at,
            finished_at=at,
        )
        session.add(run)
        session.flush()
        for org in config.organisations:
            organisation = session.scalar(select(Organisation).filter_by(slug=org.slug))
            ok = SCANNED_OK[org.slug].get(collector, [])
            for subject in ok:
                asset = next(r[4] for r in SEPTEMBER + OCTOBER if subject in (r[3], r[4]))
                _state(session, organisation.id, collector, subject, asset, run, at, "ok")
            if at == OCTOBER_SCAN and (org.slug, collector) == OCTOBER_TIMEOUT[:2]:
                subject, asset = OCTOBER_TIMEOUT[2:]
                session.add(
                    ScanError(
                        run_id=run.id,
                        organisation_id=organisation.id,
                        subject=subject,
                        asset=asset,
                        kind="timeout",
                        message="no answer in 5 s",
                    )
                )
                _state(session, organisation.id, collector, subject, asset, run, at, "error")
            observed = [
                ObservedFinding(
                    check_id=check_id,
                    subject=subject,
                    target=subject.split(":")[0] if collector == "services" else subject,
                    asset=asset,
                    category=check_id.split(".")[0],
                    severity=str(registry[check_id].severity),
                    evidence={"seen": "yes"},
                )
                for slug, c, check_id, subject, asset in rows
                if slug == org.slug and c == collector
            ]
            reconcile(
                session,
                organisation=organisation,
                collector=collector,
                run_id=run.id,
                observed=observed,
                scanned_ok=set(ok),
                now=at,
            )


def _state(
    session: Session,
    organisation_id: int,
    collector: str,
    subject: str,
    asset: str,
    run: ScanRun,
    at: dt.datetime,
    status: str,
) -> None:
    state = session.scalar(
        select(SubjectState).filter_by(
            organisation_id=organisation_id, collector=collector, subject=subject
        )
    )
    if state is None:
        state = SubjectState(organisation_id=organisation_id, collector=collector, subject=subject)
        session.add(state)
    state.asset, state.last_status, state.last_scanned_at = asset, status, at
    state.last_run_id = run.id
    if status == "ok":
        state.last_success_at = at


def build_estate(sessions: sessionmaker[Session]) -> Config:
    """The synthetic estate after its September and October scans; see the module doc."""
    config = estate_config()
    with sessions.begin() as session:
        sync_config(session, config)
        for slug, points in HISTORY.items():
            organisation = session.scalar(select(Organisation).filter_by(slug=slug))
            for month, score in points:
                session.add(
                    ScoreSnapshot(
                        organisation_id=organisation.id,
                        day=month.last_day,
                        score=score,
                        grade="A" if score >= 90 else "B" if score >= 80 else "D",
                        scoring_version="1.0",
                        category_scores={"tls": score, "email": score - 5},
                        open_counts={},
                    )
                )
        _scan(session, config, SEPTEMBER, SEPTEMBER_SCAN)
    take_snapshots(sessions, config, SEPTEMBER_SCAN.date(), now=SEPTEMBER_SCAN)
    with sessions.begin() as session:
        _scan(session, config, OCTOBER, OCTOBER_SCAN)
    take_snapshots(sessions, config, OCTOBER_SCAN.date(), now=OCTOBER_SCAN)
    return config


@pytest.fixture
def estate(sessions: sessionmaker[Session]) -> Config:
    return build_estate(sessions)


VISIBLE = ("hyvala", "rapala")
REGISTRY = load_registry()


def test_month_arithmetic():
    assert Month.parse("2026-01").previous() == Month(2025, 12)
    assert Month(2026, 12).next() == Month(2027, 1)
    assert Month(2026, 10).back(11) == Month(2025, 11)
    assert Month(2024, 2).last_day == dt.date(2024, 2, 29)
    assert previous_month(dt.datetime(2026, 1, 1, 5, tzinfo=dt.UTC)) == Month(2025, 12)
    with pytest.raises(ValueError, match="YYYY-MM"):
        Month.parse("10/2026")


def test_the_month_shows_what_was_fixed_and_what_is_new(sessions, estate):
    with sessions() as session:
        rapala = organisation_report(
            session, "rapala", MONTH, visible=VISIBLE, now=NOW, registry=REGISTRY
        )
        hyvala = organisation_report(
            session, "hyvala", MONTH, visible=VISIBLE, now=NOW, registry=REGISTRY
        )
    assert [(f.check_id, f.subject) for f in rapala.resolved] == [
        ("services.exposed.ftp", "127.60.2.20:21/tcp")
    ]
    assert [(f.check_id, f.severity) for f in rapala.new] == [
        ("services.exposed.rdp", "critical"),
        ("email.dmarc.policy_none", "medium"),
    ]
    assert rapala.resolved_by_severity == {"critical": 0, "high": 1, "medium": 0, "low": 0}
    assert rapala.new_by_severity == {"critical": 1, "high": 0, "medium": 1, "low": 0}
    assert [f.check_id for f in hyvala.resolved] == ["email.dmarc.policy_none"]
    assert hyvala.new == ()


def test_headline_compares_with_the_end_of_the_previous_month(sessions, estate):
    with sessions() as session:
        report = organisation_report(
            session, "hyvala", MONTH, visible=VISIBLE, now=NOW, registry=REGISTRY
        )
    # September's last snapshot is the one taken after the September scan.
    assert report.previous is not None and report.previous.day == SEPTEMBER_SCAN.date()
    assert report.delta == pytest.approx(report.score.score - report.previous.score, abs=0.05)
    assert report.delta > 0  # DMARC fixed
    # Twelve months, November 2025 to October 2026; the report month is the live score.
    assert report.trend_months[0] == Month(2025, 11) and report.trend_months[-1] == MONTH
    assert report.trend[0] is None  # no snapshot for Hyvälä in November 2025
    assert report.trend[-1].score == report.score.score
    assert [p.score for p in report.trend[2:10]] == [80.0 + m for m in range(1, 9)]


def test_priorities_due_dates_and_the_appendix(sessions, estate):
    with sessions() as session:
        report = organisation_report(
            session, "rapala", MONTH, visible=VISIBLE, now=NOW, registry=REGISTRY
        )
    assert len(report.top_actions) == 5
    # The two critical problems come first (scoring decides the order between them).
    assert {a.check_id for a in report.top_actions[:2]} == {
        "tls.certificate.expired",
        "services.exposed.rdp",
    }
    # No DMARC (high) since 14 September: due 30 days later, overdue by the month's end.
    dmarc = next(a for a in report.actions if a.check_id == "email.dmarc.missing")
    assert dmarc.due == dt.date(2026, 10, 14) and dmarc.overdue
    assert dmarc in report.overdue
    appendix = {(r.check_id, r.subject): r for r in report.appendix}
    assert set(appendix) == {
        ("services.exposed.rdp", "127.60.2.20:3389/tcp"),
        ("tls.certificate.expired", "www.rapala.test:443"),
        ("email.dmarc.missing", "rapala.test"),
    }
    assert report.appendix[0].severity == "critical"


def test_coverage_says_what_could_not_be_checked(sessions, estate):
    with sessions() as session:
        report = organisation_report(
            session, "rapala", MONTH, visible=VISIBLE, now=NOW, registry=REGISTRY
        )
    coverage = report.coverage
    assert coverage.runs == 3
    assert [a.value for a in coverage.incomplete] == ["vanha.rapala.test"]
    assert coverage.incomplete[0].failing == ("dns_email",)
    assert not coverage.incomplete[0].checked and coverage.incomplete[0].last_success is None
    assert coverage.assets_complete == 3
    assert [(e.collector, e.kind, e.subjects) for e in coverage.errors] == [
        ("dns_email", "timeout", ("vanha.rapala.test",))
    ]


def test_a_report_of_an_invisible_organisation_is_refused(sessions, estate):
    with sessions() as session, pytest.raises(NotVisible):
        organisation_report(
            session, "rapala", MONTH, visible=["hyvala"], now=NOW, registry=REGISTRY
        )


def test_an_accepted_risk_leaves_the_priorities_and_the_appendix(sessions, estate):
    with sessions.begin() as session:
        rdp = session.scalar(select(Finding).filter_by(check_id="services.exposed.rdp"))
        decide(
            session,
            finding_id=rdp.id,
            visible=VISIBLE,
            decision=FindingStatus.ACCEPTED,
            actor="it@rapala.test",
            reason="the vendor's support line, closed in December",
            until=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
            now=NOW - dt.timedelta(hours=1),
        )
    with sessions() as session:
        report = organisation_report(
            session, "rapala", MONTH, visible=VISIBLE, now=NOW, registry=REGISTRY
        )
    assert "services.exposed.rdp" not in {a.check_id for a in report.actions}
    assert "services.exposed.rdp" not in {r.check_id for r in report.appendix}


def test_portfolio_lists_every_organisation_common_problems_and_who_worsened(sessions, estate):
    with sessions() as session:
        report = portfolio_report(
            session, "seutu", MONTH, visible=VISIBLE, now=NOW, registry=REGISTRY
        )
        only_hyvala = portfolio_report(
            session, "seutu", MONTH, visible=["hyvala"], now=NOW, registry=REGISTRY
        )
    assert [r.organisation for r in report.rows] == ["hyvala", "rapala"]
    assert [r.organisation for r in report.worsened] == ["rapala"]
    assert [(p.check_id, p.organisations) for p in report.common] == [
        ("tls.protocol.tls1_3_missing", ("hyvala", "rapala"))
    ]
    assert [r.organisation for r in only_hyvala.rows] == ["hyvala"]
    assert only_hyvala.common == ()
