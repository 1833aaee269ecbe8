"""`riskiturva score`: grade, answer, priorities and explanation from a real store."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from riskiturva.config import load_config
from riskiturva.exit_codes import ExitCode
from riskiturva.models import Organisation
from riskiturva.store import ObservedFinding, make_engine, reconcile, session_factory, sync_config
from riskiturva_cli import main
from tests.conftest import MINIMAL_CONFIG


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """The minimal configuration, its database holding an open RDP and an open AXFR."""
    path = tmp_path / "riskiturva.toml"
    path.write_text(MINIMAL_CONFIG, encoding="utf-8")
    config = load_config(path)
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade", "--config", str(path)]).exit_code == 0
    sessions = session_factory(make_engine(config.settings.effective_database_url))
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=20)
    with sessions.begin() as session:
        sync_config(session, config)
        hyvala = session.scalar(select(Organisation).filter_by(slug="hyvala"))
        reconcile(
            session,
            organisation=hyvala,
            collector="services",
            run_id=None,
            observed=[
                ObservedFinding(
                    "services.exposed.rdp",
                    "127.60.1.10:3389/tcp",
                    "127.60.1.10",
                    "127.60.1.10",
                    "services",
                    "critical",
                    {"port": 3389},
                ),
                ObservedFinding(
                    "dns.axfr.open", "127.60.1.11", "127.60.1.11", "127.60.1.11", "dns", "high", {}
                ),
            ],
            scanned_ok=set(),
            now=now,
        )
    return path


def test_json_gives_grade_answer_priorities_and_an_explanation_that_adds_up(config_path):
    result = CliRunner().invoke(
        main, ["score", "--config", str(config_path), "--format", "json", "--lang", "en"]
    )

    assert result.exit_code == 0, result.output
    documents = {d["organisation"]: d for d in json.loads(result.output)}
    assert set(documents) == {"hyvala", "rapala"}
    hyvala = documents["hyvala"]
    assert hyvala["grade"] in ("D", "F")
    assert hyvala["answer"].startswith(f"Not yet: grade {hyvala['grade']} ")
    assert "1 critical problem" in hyvala["answer"]
    rdp = next(p for p in hyvala["priorities"] if p["check_id"] == "services.exposed.rdp")
    assert rdp["overdue"]  # critical: 15 days, first seen 20 days ago
    lost = sum(line["points_lost"] for line in hyvala["explanation"])
    assert round(100 - lost, 1) == hyvala["score"]
    assert {c["id"] for c in hyvala["caps"]} == {"open_critical"}
    assert documents["rapala"]["grade"] == "A"
    # rapala was never scanned: no findings then means "not known", not "yes"
    assert documents["rapala"]["checked"] is False
    assert documents["rapala"]["answer"].startswith("Not known yet")


def test_table_names_the_organisation_the_answer_and_the_explanation(config_path):
    result = CliRunner().invoke(
        main, ["score", "--config", str(config_path), "--org", "hyvala", "--lang", "fi"]
    )

    assert result.exit_code == 0, result.output
    assert "hyvala — Hyvälän kunta:" in result.output
    assert "Ei vielä: arvosana" in result.output
    assert "OVERDUE" in result.output
    assert "To reach B" in result.output
    assert "rapala" not in result.output


def _score(config_path: Path, *args: str) -> int:
    return CliRunner().invoke(main, ["score", "--config", str(config_path), *args]).exit_code


def test_fail_below_exits_3_below_the_grade_and_1_when_never_checked(config_path):
    # hyvala (an open critical) is below C; rapala was never checked: its A proves nothing
    assert _score(config_path, "--org", "hyvala", "--fail-below", "C") == ExitCode.THRESHOLD
    assert _score(config_path, "--org", "rapala", "--fail-below", "B") == ExitCode.FAILED
    assert _score(config_path, "--fail-below", "C") == ExitCode.FAILED  # failed comes first
    assert _score(config_path, "--org", "rapala") == ExitCode.OK  # no threshold asked
    # When rapala has been checked (one low finding seen), its A passes the threshold
    config = load_config(config_path)
    sessions = session_factory(make_engine(config.settings.effective_database_url))
    with sessions.begin() as session:
        rapala = session.scalar(select(Organisation).filter_by(slug="rapala"))
        seen = ObservedFinding(
            "dns.caa.missing", "rapala.test", "rapala.test", "rapala.test", "dns", "low", {}
        )
        reconcile(
            session,
            organisation=rapala,
            collector="dns_email",
            run_id=None,
            observed=[seen],
            scanned_ok=set(),
            now=dt.datetime.now(dt.UTC),
        )
    assert _score(config_path, "--org", "rapala", "--fail-below", "B") == ExitCode.OK
