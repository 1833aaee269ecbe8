"""Exit codes scripts can trust, and the clear errors of commands that cannot start."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from riskiturva.exit_codes import (
    MEANINGS,
    PRECEDENCE,
    SUMMARIES,
    ExitCode,
    combined,
    scan_exit_code,
    score_exit_code,
)
from riskiturva.models import RunStatus
from riskiturva.runner import Outcome, RunError, RunReport
from riskiturva_cli import commands as cli
from tests.conftest import MINIMAL_CONFIG

ROOT = Path(__file__).resolve().parents[1]


def report(status: RunStatus, ok: int = 1, failed: int = 0) -> RunReport:
    return RunReport(1, "tiny", status, ok=ok, failed=failed)


def test_each_meaning_has_its_own_code_and_words():
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 130]
    assert set(MEANINGS) == set(SUMMARIES) == set(ExitCode)
    assert ExitCode.USAGE == 2  # click's own usage errors


@pytest.mark.parametrize(
    ("reports", "threshold", "expected"),
    [
        ([report(RunStatus.OK)], False, ExitCode.OK),
        ([report(RunStatus.PARTIAL, ok=1, failed=2)], False, ExitCode.OK),
        ([report(RunStatus.OK)], True, ExitCode.THRESHOLD),
        ([report(RunStatus.OK), report(RunStatus.FAILED, ok=0)], True, ExitCode.FAILED),
        (
            [report(RunStatus.FAILED, ok=0), report(RunStatus.INTERRUPTED)],
            True,
            ExitCode.INTERRUPTED,
        ),
        # Every run "ok" yet nothing checked at all: no run had a target
        ([report(RunStatus.OK, ok=0)], False, ExitCode.FAILED),
        ([], False, ExitCode.FAILED),
    ],
    ids=[
        "ok",
        "partial",
        "threshold",
        "failed-beats-threshold",
        "interrupted-first",
        "nothing",
        "none",
    ],
)
def test_scan_exit_code(reports, threshold, expected):
    assert scan_exit_code(reports, threshold_reached=threshold) is expected


def test_score_exit_code():
    assert score_exit_code([("F", True)], fail_below=None) is ExitCode.OK
    assert score_exit_code([("B", True), ("A", True)], fail_below="B") is ExitCode.OK
    assert score_exit_code([("C", True)], fail_below="B") is ExitCode.THRESHOLD
    assert score_exit_code([("A", False)], fail_below="B") is ExitCode.FAILED
    assert score_exit_code([("C", True), ("A", False)], fail_below="B") is ExitCode.FAILED


def test_precedence_is_interrupted_failed_threshold():
    assert PRECEDENCE == (ExitCode.INTERRUPTED, ExitCode.FAILED, ExitCode.THRESHOLD)
    assert combined([]) is ExitCode.OK
    assert combined([ExitCode.THRESHOLD, ExitCode.FAILED]) is ExitCode.FAILED


def test_docs_and_readme_name_every_code():
    cli_md = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for code in ExitCode:
        assert f"| {int(code)} | `{code.name}` |" in cli_md
        assert re.search(rf"\|\s*{int(code)}\s*\|", readme), f"README lacks exit code {int(code)}"


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "riskiturva.toml"
    path.write_text(MINIMAL_CONFIG, encoding="utf-8")
    return path


def test_configuration_and_usage_errors_exit_2(config_path, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL_CONFIG.replace("port = 53", 'port = "53"'), encoding="utf-8")
    runner = CliRunner()
    for args in (
        ["scan", "--config", str(bad)],
        ["score", "--config", str(bad)],
        ["scan", "--config", str(config_path), "--org", "nosuch"],
        ["score", "--config", str(config_path), "--fail-below", "Z"],
        ["scan", "--config", str(config_path), "--no-such-option"],
    ):
        result = runner.invoke(cli.main, args)
        assert result.exit_code == ExitCode.USAGE, (args, result.output)
        assert "Traceback" not in result.output


def _unreachable_postgres(config_path: Path) -> Path:
    # Nothing listens on port 1 of loopback: the connection is refused at once.
    text = MINIMAL_CONFIG.replace(
        'data_dir = "data"',
        'data_dir = "data"\ndatabase_url = "postgresql+psycopg://riskiturva:Pg-Salasana-9@127.0.0.1:1/r"',
    )
    config_path.write_text(text, encoding="utf-8")
    return config_path


@pytest.mark.parametrize(
    "command",
    [
        ["db", "upgrade"],
        ["init"],
        ["findings", "list"],
        ["score"],
        ["scan", "--collector", "dns_email"],
        ["users", "list"],
        ["report", "--org", "hyvala", "--month", "2026-10"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_an_unreachable_database_is_a_clear_error_not_a_traceback(command, config_path):
    path = _unreachable_postgres(config_path)
    result = CliRunner().invoke(cli.main, [*command, "--config", str(path)])
    assert result.exit_code == ExitCode.FAILED, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "cannot open the database postgresql+psycopg://riskiturva:***@127.0.0.1:1/r" in (
        result.output
    )
    assert "Pg-Salasana-9" not in result.output


def test_a_data_dir_that_is_a_file_stops_a_store_command_with_exit_2(config_path, tmp_path):
    (tmp_path / "data").write_text("not a folder")
    result = CliRunner().invoke(cli.main, ["db", "upgrade", "--config", str(config_path)])
    assert result.exit_code == ExitCode.USAGE
    assert "settings.data_dir: must be a folder" in result.output
    assert "Traceback" not in result.output


def test_the_summary_names_failed_targets_bounded_and_escaped(capsys):
    # Given a run with more errors than the summary shows, one carrying terminal controls
    hostile = "\x1b]0;pwned\x07\x1b[2J banner"
    errors = [
        RunError(
            "hyvala", f"127.60.1.{n}:443", "127.60.1.0/24", Outcome.FAILED, "timeout", "no answer"
        )
        for n in range(cli.ERRORS_SHOWN + 2)
    ]
    errors.insert(
        0, RunError("hyvala", "evil\x1b[31m.test", "x", Outcome.SKIPPED, "out_of_scope", hostile)
    )
    run = RunReport(
        7, "tls", RunStatus.PARTIAL, ok=3, failed=len(errors) - 1, skipped=1, errors=errors
    )
    # When the summary is printed
    cli._print_run_summary([run])
    out = capsys.readouterr().out
    # Then no control character reaches the terminal, and the list is bounded
    assert "\x1b" not in out and "\x07" not in out
    assert f"Targets not checked completely ({len(errors)}):" in out
    assert "tls hyvala 127.60.1.0:443: failed, timeout: no answer" in out
    assert "… and 3 more (riskiturva scan --format json lists all)" in out
    # the failed ones come first; the skipped one is past the cut
    assert "evil" not in out
    # And a hostile subject and message are shown as escapes, on one line
    cli._print_run_summary(
        [RunReport(8, "tls", RunStatus.PARTIAL, ok=1, skipped=1, errors=errors[:1])]
    )
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "evil\\x1b[31m.test: skipped, out_of_scope: \\x1b]0;pwned\\x07\\x1b[2J banner" in out
