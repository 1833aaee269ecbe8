"""Files and secrets: private data files, the password policy, and a CLI whose output can
never carry a terminal control sequence from a scanned target."""

from __future__ import annotations

import json
import os
import pty
import select as select_module
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from riskiturva import _terminal
from riskiturva.auth import AccountError, create_user, password_weakness
from riskiturva.config import load_config
from riskiturva.db import open_store
from riskiturva.models import Organisation, ScanRun
from riskiturva.store import ObservedFinding, reconcile, sync_config
from riskiturva_cli import commands as cli
from tests.conftest import MINIMAL_CONFIG, T0

RISKITURVA = str(Path(sys.executable).parent / "riskiturva")

# What a hostile TXT record, certificate field or banner could carry: a colour, an OSC that
# sets the window title, a C1 CSI (U+009B), a cursor move, a bell and a right-to-left override.
HOSTILE = "evil\x1b[31mred\x1b]0;pwned\x07\x9b2J\x1b[2A\u202eoi.txt\rfake"


@pytest.mark.parametrize(
    "password",
    ["x" * 12, " " * 16, "password1234", "Password123!", "qwertyuiop12", "123456789012"],
)
def test_trivially_weak_passwords_are_refused(password):
    assert password_weakness(password) is not None


def test_the_user_name_and_the_product_name_count_as_known_words():
    assert password_weakness("riskiturva2026") is not None
    assert password_weakness("annakoskinen1", user_inputs=["annakoskinen"]) is not None


@pytest.mark.parametrize(
    "password", ["correct horse battery", "kissakoira tietoturva", "x8Kp2mQv9Lr#"]
)
def test_reasonable_passwords_are_accepted(password):
    assert password_weakness(password) is None


def test_a_weak_password_is_refused_with_the_reason(sessions, minimal_config):
    with sessions.begin() as session:
        sync_config(session, minimal_config)
        with pytest.raises(AccountError, match="too easy to guess"):
            create_user(
                session, username="anna", password="Salasana1234", role="partner_admin", now=T0
            )
        with pytest.raises(AccountError, match="one character repeated"):
            create_user(session, username="anna", password="a" * 20, role="partner_admin", now=T0)


def test_printable_escapes_every_control_character_and_keeps_json_meaning():
    shown = _terminal.printable(HOSTILE)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)
    assert "\u202e" not in shown
    assert shown.startswith("evil\\u001b[31mred")
    # The escapes are JSON escapes: a JSON document passed through decodes to the original
    assert json.loads(_terminal.printable(json.dumps(HOSTILE, ensure_ascii=False))) == HOSTILE


@pytest.fixture
def hostile_store(tmp_path):
    """A store with a finding, an error and a run message from a hostile target."""
    path = tmp_path / "riskiturva.toml"
    path.write_text(MINIMAL_CONFIG, encoding="utf-8")
    config = load_config(path)
    sessions = open_store(config)
    with sessions.begin() as session:
        sync_config(session, config)
        organisation = session.query(Organisation).filter_by(slug="hyvala").one()
        run = ScanRun(collector="tls", organisations=["hyvala"], started_at=T0, status="ok")
        session.add(run)
        session.flush()
        reconcile(
            session,
            organisation=organisation,
            collector="tls",
            run_id=run.id,
            observed=[
                ObservedFinding(
                    check_id="tls.certificate.expired",
                    subject=f"127.60.1.10:443 {HOSTILE}",
                    target="127.60.1.10",
                    asset="127.60.1.10",
                    category="tls",
                    severity="high",
                    evidence={"subject_cn": HOSTILE},
                )
            ],
            scanned_ok=set(),
            now=T0,
        )
    return path


def assert_no_control_characters(output: str) -> None:
    assert "\x1b]0;pwned" not in output and "\x1b[31mred" not in output
    assert "\x9b" not in output and "\x07" not in output and "\u202e" not in output


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_findings_output_carries_no_control_characters(hostile_store, fmt):
    result = CliRunner().invoke(
        cli.main, ["findings", "list", "--config", str(hostile_store), "--format", fmt]
    )
    assert result.exit_code == 0, result.output
    assert_no_control_characters(result.output)
    assert "evil" in result.output
    if fmt == "json":  # machine output keeps its meaning
        (finding,) = json.loads(result.output)
        assert finding["evidence"]["subject_cn"] == HOSTILE


def test_on_a_terminal_rich_keeps_its_own_styles_but_not_the_targets(hostile_store):
    # A real pseudo-terminal: rich writes its own escape codes there
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [RISKITURVA, "findings", "list", "--config", str(hostile_store)],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "COLUMNS": "200", "TERM": "xterm-256color"},
    )
    os.close(terminal)
    chunks = []
    while True:
        ready, _, _ = select_module.select([controller], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(controller, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=30)
    os.close(controller)
    output = b"".join(chunks).decode("utf-8", errors="replace")
    assert process.returncode == 0, output
    assert "\x1b[" in output  # rich's own styling (the table header)
    assert_no_control_characters(output)
    assert "\\u001b]0;pwned" in output  # shown, visibly


def test_the_data_directory_and_its_files_are_private(tmp_path):
    path = tmp_path / "riskiturva.toml"
    path.write_text(MINIMAL_CONFIG, encoding="utf-8")
    result = CliRunner().invoke(cli.main, ["db", "upgrade", "--config", str(path)])
    assert result.exit_code == 0, result.output
    data = tmp_path / "data"
    assert oct(data.stat().st_mode & 0o777) == "0o700"
    files = {p.name: oct(p.stat().st_mode & 0o777) for p in data.iterdir()}
    assert "riskiturva.db" in files
    assert set(files.values()) == {"0o600"}, files


def test_an_existing_world_readable_database_is_made_private(tmp_path):
    database = tmp_path / "data" / "riskiturva.db"
    database.parent.mkdir()
    database.touch(mode=0o644)
    os.chmod(database, 0o644)
    path = tmp_path / "riskiturva.toml"
    path.write_text(MINIMAL_CONFIG, encoding="utf-8")
    open_store(load_config(path))
    assert oct(database.stat().st_mode & 0o777) == "0o600"
