"""One history, every face: the same numbers and the same change lists everywhere.

Given a municipality's autumn — findings opened on 1 October, a remote desktop resolved on
5 November and reopened on 20 November, a new self-signed certificate, a risk accepted
that expired on 15 November (noticed by the scan of 20 November), another that ran out on
25 November with no scan since, a risk accepted on 25 November and revoked the next day,
a false positive, and an acceptance ending within 14 days — the CLI's `score --format
json`, the dashboard's portfolio and overview callbacks and the November report give the
same score, grade, categories, open counts, 30-day change, priorities and gains, changes
and exceptions register, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import dashboard
from dashboard import ids
from dashboard.components import CATEGORIES
from riskiturva import auth
from riskiturva.checks import load_registry
from riskiturva.config import Config
from riskiturva.history import take_snapshots
from riskiturva.models import Finding, FindingStatus, Organisation, RunStatus, ScanRun, SubjectState
from riskiturva.period import Month
from riskiturva.store import ObservedFinding, decide, reconcile, revoke, sync_config
from riskiturva.views import ChangeKind, organisation_report, portfolio_report
from riskiturva_cli import main
from tests.test_dashboard_access import call, sign_in, text_of

REGISTRY = load_registry()
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
MONTH = Month(2026, 11)
PASSWORD = "consistent numbers everywhere"
ESTATE = """
[[partners]]
slug = "seutu"
name = "Seudun ICT-palvelut"
organisations = ["hyvala", "rapala"]

[[organisations]]
slug = "hyvala"
name = { fi = "Hyvälän kunta", sv = "Hyvälä kommun", en = "Municipality of Hyvälä" }
scope = { domains = ["hyvala.test"] }
assets = [{ kind = "host", value = "www.hyvala.test", criticality = "high" }]

[[organisations]]
slug = "rapala"
name = { fi = "Rapalan kunta", sv = "Rapala kommun", en = "Municipality of Rapala" }
scope = { domains = ["rapala.test"], networks = ["127.60.2.0/24"] }
assets = [
  { kind = "host", value = "www.rapala.test", criticality = "high", tags = ["e-service"] },
  { kind = "mail_domain", value = "rapala.test" },
  { kind = "ip", value = "127.60.2.20" },
]
"""
RDP = ("services.exposed.rdp", "127.60.2.20:3389/tcp", "127.60.2.20")
FTP = ("services.exposed.ftp", "127.60.2.20:21/tcp", "127.60.2.20")
TLS10 = ("tls.protocol.tls1_0", "www.rapala.test:443", "www.rapala.test")
SELF_SIGNED = ("tls.certificate.self_signed", "www.rapala.test:443", "www.rapala.test")
DMARC = ("email.dmarc.missing", "rapala.test", "rapala.test")
CAA = ("dns.caa.missing", "rapala.test", "rapala.test")
SOFTFAIL = ("email.spf.softfail_all", "rapala.test", "rapala.test")
HYVALA_TLS13 = ("tls.protocol.tls1_3_missing", "www.hyvala.test:443", "www.hyvala.test")


def at(month: int, day: int, hour: int = 2) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=dt.UTC)


def scan(
    sessions: sessionmaker[Session],
    slug: str,
    collector: str,
    seen: list[tuple[str, str, str]],
    targets: list[str],
    when: dt.datetime,
) -> None:
    """One complete scan of `targets` by `collector`, as the runner records it."""
    with sessions.begin() as session:
        organisation = session.scalar(select(Organisation).filter_by(slug=slug))
        run = ScanRun(
            collector=collector,
            organisations=[slug],
            status=RunStatus.OK,
            started_at=when,
            finished_at=when,
        )
        session.add(run)
        session.flush()
        for target in targets:
            state = session.scalar(
                select(SubjectState).filter_by(
                    organisation_id=organisation.id, collector=collector, subject=target
                )
            ) or SubjectState(organisation_id=organisation.id, collector=collector, subject=target)
            state.asset, state.last_status, state.last_run_id = target.split(":")[0], "ok", run.id
            state.last_scanned_at = state.last_success_at = when
            session.add(state)
        reconcile(
            session,
            organisation=organisation,
            collector=collector,
            run_id=run.id,
            observed=[
                ObservedFinding(
                    check_id=check_id,
                    subject=subject,
                    target=asset if collector == "services" else subject,
                    asset=asset,
                    category=str(REGISTRY[check_id].category),
                    severity=str(REGISTRY[check_id].severity),
                    evidence={},
                )
                for check_id, subject, asset in seen
            ],
            scanned_ok=set(targets),
            now=when,
        )


def finding_id(sessions: sessionmaker[Session], key: tuple[str, str, str]) -> int:
    with sessions() as session:
        found = session.scalar(select(Finding.id).filter_by(check_id=key[0], subject=key[1]))
    assert found is not None
    return found


def person(
    sessions: sessionmaker[Session],
    key: tuple[str, str, str],
    when: dt.datetime,
    until: dt.datetime,
    decision: FindingStatus = FindingStatus.ACCEPTED,
) -> None:
    with sessions.begin() as session:
        decide(
            session,
            finding_id=finding_id(sessions, key),
            visible=["rapala"],
            decision=decision,
            actor="rapala-it",
            reason=f"decided on {when.date()}",
            until=until,
            now=when,
        )


def autumn(sessions: sessionmaker[Session], config: Config) -> None:
    """The history of the module docstring."""
    with sessions.begin() as session:
        sync_config(session, config)
    services, web_tls = ["127.60.2.20"], ["www.rapala.test:443"]
    scan(sessions, "rapala", "services", [RDP, FTP], services, at(10, 1))
    scan(sessions, "rapala", "tls", [TLS10], web_tls, at(10, 1))
    scan(sessions, "rapala", "dns_email", [DMARC, CAA, SOFTFAIL], ["rapala.test"], at(10, 1))
    scan(sessions, "hyvala", "tls", [HYVALA_TLS13], ["www.hyvala.test:443"], at(10, 1))
    take_snapshots(sessions, config, dt.date(2026, 10, 1), now=at(10, 1, 5))
    person(sessions, TLS10, at(10, 5, 9), at(11, 15, 21))  # runs out on 15 November
    person(sessions, SOFTFAIL, at(10, 20, 9), at(11, 25, 21))  # runs out after the last scan
    take_snapshots(sessions, config, dt.date(2026, 10, 31), now=at(10, 31, 5))
    scan(sessions, "rapala", "services", [FTP], services, at(11, 5))  # RDP closed…
    person(sessions, FTP, at(11, 10, 9), at(12, 10, 21))  # ends within 14 days of NOW
    person(sessions, CAA, at(11, 12, 9), at(12, 31, 21), FindingStatus.FALSE_POSITIVE)
    scan(sessions, "rapala", "services", [RDP, FTP], services, at(11, 20))  # …and back
    scan(sessions, "rapala", "tls", [TLS10, SELF_SIGNED], web_tls, at(11, 20))
    take_snapshots(sessions, config, dt.date(2026, 11, 20), now=at(11, 20, 5))
    person(sessions, DMARC, at(11, 25, 9), at(12, 31, 21))
    with sessions.begin() as session:
        revoke(
            session,
            finding_id=finding_id(sessions, DMARC),
            visible=["rapala"],
            actor="rapala-it",
            reason="no DMARC is not acceptable",
            now=at(11, 26, 9),
        )


@pytest.fixture
def estate(sessions, tmp_path: Path) -> tuple[sessionmaker[Session], Config, Path]:
    url = sessions.kw["bind"].url.render_as_string(hide_password=False)
    text = f'[settings]\ndata_dir = "{tmp_path}"\ndatabase_url = "{url}"\n' + ESTATE
    path = tmp_path / "riskiturva.toml"
    path.write_text(text, encoding="utf-8")
    config = Config.model_validate(tomllib.loads(text))
    autumn(sessions, config)
    with sessions.begin() as session:
        auth.create_user(
            session,
            username="partner",
            password=PASSWORD,
            role=auth.Role.PARTNER_ADMIN,
            language="en",
            now=NOW,
        )
    return sessions, config, path


# --- reading the dashboard's layouts ---------------------------------------------------


def nodes(tree: Any) -> list[dict[str, Any]]:
    """Every component in a serialised Dash layout, depth first."""
    found = []
    if isinstance(tree, dict) and "props" in tree:
        found.append(tree)
        tree = tree["props"].get("children")
    if isinstance(tree, list):
        for child in tree:
            found += nodes(child)
    elif isinstance(tree, dict):
        found += nodes(tree)
    return found


def by_id(tree: Any, component_id: str) -> dict[str, Any]:
    matches = [n for n in nodes(tree) if n["props"].get("id") == component_id]
    assert len(matches) == 1, component_id
    return matches[0]


def text(tree: Any) -> str:
    if isinstance(tree, str | int | float):
        return str(tree)
    if isinstance(tree, list):
        return "".join(text(t) for t in tree)
    if isinstance(tree, dict) and "props" in tree:
        return text(tree["props"].get("children"))
    return ""


def table_rows(tree: Any) -> list[list[str]]:
    """The body rows of the html tables in `tree`, as cell texts."""
    return [
        [text(cell) for cell in nodes(row)[1:] if cell["type"] == "Td"]
        for row in nodes(tree)
        if row["type"] == "Tr" and any(c["type"] == "Td" for c in nodes(row))
    ]


def page(app: Any, client: Any, path: str) -> Any:
    response = call(app, client, "page.children", {(ids.URL, "pathname"): path})
    assert response.status_code == 200, text_of(response)
    return response.json["response"]["page"]["children"]


def title(check_id: str) -> str:
    return REGISTRY[check_id].title_in("en")


# --- the test --------------------------------------------------------------------------


def test_cli_dashboard_and_report_tell_the_same_story(estate):
    sessions, config, path = estate

    # When each face is asked at the same moment
    result = CliRunner().invoke(
        main,
        ["score", "--config", str(path), "--format", "json", "--lang", "en", "--top", "99"],
        obj={"clock": lambda: NOW},
    )
    assert result.exit_code == 0, result.output
    cli = {d["organisation"]: d for d in json.loads(result.output)}["rapala"]
    app = dashboard.create_app(config, sessions, clock=lambda: NOW)
    client, _ = sign_in(app, "partner", PASSWORD)
    portfolio = page(app, client, "/")
    overview = page(app, client, "/org/rapala")
    with sessions() as session:
        report = organisation_report(
            session, "rapala", MONTH, visible=["hyvala", "rapala"], now=NOW, registry=REGISTRY
        )
        partner = portfolio_report(
            session, "seutu", MONTH, visible=["hyvala", "rapala"], now=NOW, registry=REGISTRY
        )
    score = report.score
    row = next(
        r for r in by_id(portfolio, ids.PORTFOLIO_TABLE)["props"]["data"] if r["slug"] == "rapala"
    )
    partner_row = next(r for r in partner.rows if r.organisation == "rapala")

    # Then the score, grade, categories and open counts agree
    assert score.score == cli["score"] == row["score"] == partner_row.score
    line = text(by_id(overview, ids.SCORE_LINE))
    assert line.startswith(f"Score {score.score:.1f} / 100")
    assert str(score.grade) == cli["grade"] == row["grade"] == partner_row.grade
    assert text(by_id(overview, ids.GRADE)) == cli["grade"]
    # And the line about known-exploited and end-of-life software is the same view's
    assert text(by_id(overview, ids.PATCH_LINE)) == report.patch.line("en")
    categories = {c: s.score for c, s in score.categories.items()}
    assert {c: v["score"] for c, v in cli["categories"].items()} == categories
    rapala_cells = [text(by_id(portfolio, ids.heatmap_cell("rapala", c))) for c in CATEGORIES]
    # A category without findings is full marks (100) in the heatmap.
    assert rapala_cells == [f"{categories.get(c, 100.0):.1f}" for c in CATEGORIES]
    for category, value in categories.items():
        assert text(by_id(overview, ids.category_card(category))).endswith(f"{value:.1f}")
    assert cli["open_counts"] == dict(score.open_counts) == dict(partner_row.open_counts)
    assert (row["critical"], row["high"]) == (
        score.open_counts["critical"],
        score.open_counts["high"],
    )
    # and the change over 30 days: the live score against the snapshot of 31 October
    assert cli["change_30d"]["since"] == "2026-10-31" == report.previous.day.isoformat()
    assert cli["change_30d"]["delta"] == row["delta"] == report.delta
    assert f"{report.delta:+.1f}".replace("-", "−") in line and "since 2026-10-31" in line

    # and the priorities, with the same gains, which add up to the distance to 100
    gains = [(a.check_id, a.gain / 10) for a in report.actions]
    assert [(p["check_id"], p["gain"]) for p in cli["priorities"]] == gains
    assert round(sum(g for _, g in gains), 1) == round(100 - score.score, 1)
    shown = table_rows(by_id(overview, ids.PRIORITIES))
    assert [(r[0], r[3]) for r in shown] == [(title(c), f"+{g:.1f} points") for c, g in gains[:5]]
    assert {line["check_id"]: line["points_lost"] for line in cli["explanation"]} == dict(gains)

    # and the same changes, by the one event-based definition
    expected = {
        ChangeKind.NEW: [SELF_SIGNED],
        ChangeKind.RESOLVED: [RDP],
        ChangeKind.REOPENED: [RDP],
        ChangeKind.ACCEPTED: [DMARC, FTP, CAA],  # worst first, then by check id
        ChangeKind.EXPIRED: [TLS10, SOFTFAIL],
        ChangeKind.REVOKED: [DMARC],
    }
    for kind, keys in expected.items():
        pairs = [(check_id, subject) for check_id, subject, _ in keys]
        assert [(c.check_id, c.subject) for c in report.changes.of(kind)] == pairs, kind
        assert [(c["check_id"], c["subject"]) for c in cli["changes"][kind]] == pairs, kind
        items = nodes(by_id(overview, ids.changes_list(kind)))
        listed = [text(li) for li in items if li["type"] == "Li"]
        assert listed == [f"{title(c)} — {s}" for c, s in pairs], kind
    expired = {c.check_id: c.at for c in report.changes.expired}
    assert expired == {TLS10[0]: at(11, 15, 21), SOFTFAIL[0]: at(11, 25, 21)}

    # and the same exceptions register, the acceptance ending within 14 days flagged
    entries = [(e.check_id, e.subject, e.decision, e.expiring) for e in report.exceptions.entries]
    assert entries == [
        (FTP[0], FTP[1], "accepted", True),
        (CAA[0], CAA[1], "false_positive", False),
    ]
    cli_entries = cli["exceptions"]["entries"]
    assert [
        (e["check_id"], e["subject"], e["decision"], e["expiring"]) for e in cli_entries
    ] == entries
    register = table_rows(by_id(overview, ids.EXCEPTIONS))
    assert [(r[1], r[2]) for r in register] == [(title(e[0]), e[1]) for e in entries]
    assert (row["accepted"], row["expiring"]) == (1, 1)  # the high FTP, ending in 10 days
    assert "Decisions ending within 14 days: 1." in text(by_id(overview, ids.EXPIRING_WARNING))
    # an accepted high problem leaves the open counts, never the management view
    assert "0 critical and 1 high" in text(by_id(overview, ids.ACCEPTED_WARNING))
