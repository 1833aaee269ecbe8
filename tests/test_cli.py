"""The command line, driven in-process through click's runner."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from riskiturva.config import load_config
from riskiturva.models import Organisation
from riskiturva.store import ObservedFinding, make_engine, reconcile, session_factory, sync_config
from riskiturva_cli import commands as cli
from tests.conftest import MINIMAL_CONFIG, T0

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str):
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "riskiturva.toml"
    path.write_text(MINIMAL_CONFIG, encoding="utf-8")
    return path


def test_help_lists_the_commands():
    result = invoke("--help")
    for command in (
        "init",
        "config",
        "db",
        "checks",
        "findings",
        "scan",
        "version",
        "lab",
        "score",
    ):
        assert f"  {command} " in result.output


def test_config_check_accepts_the_example():
    result = invoke("config", "check", str(ROOT / "config" / "example.toml"))
    assert result.exit_code == 0
    assert "OK — 3 organisations, 1 partners, 12 assets" in result.output


def test_config_check_rejects_with_file_line_field_and_value(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        MINIMAL_CONFIG.replace('criticality = "low"', 'criticality = "severe"'), encoding="utf-8"
    )
    result = invoke("config", "check", str(bad))
    assert result.exit_code == 2
    line = next(n for n, text in enumerate(bad.read_text().splitlines(), 1) if "severe" in text)
    assert f"{bad}: invalid configuration" in result.output
    assert f"line {line}, organisations[0].assets[1].criticality" in result.output
    assert "'severe'" in result.output


def test_checks_list_json_has_ids_and_words_in_three_languages():
    rows = json.loads(invoke("checks", "list", "--format", "json").output)
    assert rows
    for row in rows:
        assert {"id", "category", "severity", "effort", "title", "guidance"} <= set(row)
        assert set(row["title"]) == {"fi", "sv", "en"}
    assert "dns.axfr.open" in {row["id"] for row in rows}


def test_init_writes_a_starter_config_and_database(tmp_path):
    path = tmp_path / "conf" / "riskiturva.toml"
    result = invoke("init", "--config", str(path))
    assert result.exit_code == 0, result.output
    assert load_config(path).organisations[0].slug == "esimerkki"
    assert (tmp_path / "conf" / "data" / "riskiturva.db").exists()
    again = invoke("init", "--config", str(path))
    assert "exists; keeping it" in again.output


def test_db_upgrade_creates_the_schema(config_path):
    result = invoke("db", "upgrade", "--config", str(config_path))
    assert result.exit_code == 0
    assert (config_path.parent / "data" / "riskiturva.db").exists()


def _seed(config_path: Path, subject: str) -> None:
    config = load_config(config_path)
    invoke("db", "upgrade", "--config", str(config_path))
    sessions = session_factory(make_engine(config.settings.effective_database_url))
    with sessions.begin() as session:
        sync_config(session, config)
        org = session.scalar(select(Organisation).filter_by(slug="hyvala"))
        observed = ObservedFinding(
            "dns.caa.missing", subject, subject, subject, "dns", "low", {"records": []}
        )
        reconcile(
            session,
            organisation=org,
            collector="dns_email",
            run_id=None,
            observed=[observed],
            scanned_ok=[],
            now=T0,
        )


def test_findings_list_in_json_and_csv(config_path):
    _seed(config_path, '=HYPERLINK("http://evil.example")')
    records = json.loads(
        invoke("findings", "list", "--config", str(config_path), "--format", "json").output
    )
    assert [(r["organisation"], r["check_id"], r["status"]) for r in records] == [
        ("hyvala", "dns.caa.missing", "open")
    ]
    assert records[0]["title"] == "CAA-tietue puuttuu"
    rows = list(
        csv.DictReader(
            io.StringIO(
                invoke("findings", "list", "--config", str(config_path), "--format", "csv").output
            )
        )
    )
    # A value from the outside world cannot become a spreadsheet formula.
    assert rows[0]["subject"].startswith("'=")
    assert (
        invoke(
            "findings", "list", "--config", str(config_path), "--org", "rapala", "--format", "json"
        ).output.strip()
        == "[]"
    )


def test_unknown_organisation_is_a_usage_error(config_path):
    result = CliRunner().invoke(
        cli.main, ["findings", "list", "--config", str(config_path), "--org", "nope"]
    )
    assert result.exit_code == 2
    assert "unknown organisation(s): nope" in result.output


def test_scan_without_collectors_says_so(config_path, monkeypatch):
    monkeypatch.setattr(cli, "discover_collectors", dict)
    result = CliRunner().invoke(cli.main, ["scan", "--config", str(config_path)])
    assert result.exit_code == 1
    assert "no collectors are installed" in result.output


def test_scan_rejects_an_unknown_collector(config_path):
    result = CliRunner().invoke(
        cli.main, ["scan", "--config", str(config_path), "--collector", "nosuch"]
    )
    assert result.exit_code == 2
    assert "unknown collector(s): nosuch" in result.output
