"""`riskiturva assets import FILE --org X [--dry-run]`: assets from XLSX or CSV, in scope only.

Given Hyvälä (scope hyvala.test and 127.60.1.0/24), a spreadsheet of its assets with
Finnish, Swedish or English headings is imported as assets added by hand; a dry run
changes nothing; a row outside the scope, a formula, an unknown kind or heading stops the
whole import, and the message names the file, the row and the column.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from riskiturva.config import load_config
from riskiturva.db import open_store
from riskiturva.exit_codes import ExitCode
from riskiturva.models import Asset
from riskiturva.models_auth import AuditEvent
from riskiturva_cli import main
from tests.conftest import MINIMAL_CONFIG


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "riskiturva.toml"
    path.write_text(MINIMAL_CONFIG, encoding="utf-8")
    return path


def _import(config_path: Path, file: Path, *args: str):
    return CliRunner().invoke(
        main,
        ["assets", "import", str(file), "--config", str(config_path), "--org", "hyvala", *args],
    )


def _counts(config_path: Path) -> tuple[int, int]:
    """Assets and audit rows in the store (none before the first command)."""
    sessions = open_store(load_config(config_path))
    with sessions() as session:
        return (
            session.scalar(select(func.count(Asset.id))) or 0,
            session.scalar(select(func.count(AuditEvent.id))) or 0,
        )


def _xlsx(path: Path, rows: list[list[object]]) -> Path:
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)
    return path


def test_a_finnish_csv_is_checked_by_a_dry_run_then_imported_once(config_path, tmp_path):
    # Given a CSV as Excel writes it in Finland: BOM, `;`, Finnish headings
    file = tmp_path / "kohteet.csv"
    file.write_bytes(
        "Tyyppi;Kohde;Kriittisyys;Tunnisteet;Huomautus\r\n"
        "host;uusi.hyvala.test;high;e-service, web;Uusi asiointipalvelu\r\n"
        "ip;127.60.1.20;;;\r\n"
        ";;;;\r\n".encode("utf-8-sig")
    )
    before = _counts(config_path)

    # When it is imported as a dry run, then it says what it would add and changes nothing
    result = _import(config_path, file, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would add: hyvala host uusi.hyvala.test" in result.output
    assert "2 would add, 0 already in the inventory (dry run: nothing changed)" in result.output
    assert _counts(config_path) == before

    # When it is imported, the assets are active, added by hand, with their settings
    result = _import(config_path, file)
    assert result.exit_code == 0, result.output
    sessions = open_store(load_config(config_path))
    with sessions() as session:
        added = session.scalar(select(Asset).where(Asset.value == "uusi.hyvala.test"))
        assert (added.origin, added.state, added.criticality) == ("added", "active", "high")
        assert added.tags == ["e-service", "web"]
        assert added.owner_note == "Uusi asiointipalvelu"
        ip = session.scalar(select(Asset).where(Asset.value == "127.60.1.20"))
        assert ip.criticality == "medium"
        actions = session.scalars(select(AuditEvent.action)).all()
        assert actions.count("asset.added") == 2

    # And importing it again adds nothing
    result = _import(config_path, file)
    assert result.exit_code == 0, result.output
    assert "0 added, 2 already in the inventory" in result.output


def test_a_row_outside_the_scope_stops_the_import_and_names_row_and_column(config_path, tmp_path):
    file = _xlsx(
        tmp_path / "tillgångar.xlsx",
        [
            ["Typ", "Tillgång", "Taggar"],
            ["host", "ok.hyvala.test", ""],
            ["host", "www.rapala.test", ""],
            ["ip", "127.60.2.10", ""],
            ["network", "127.60.0.0/16", ""],
            ["laptop", "x.hyvala.test", ""],
            ["host", '=HYPERLINK("http://127.0.0.1/")', ""],
        ],
    )
    before = _counts(config_path)

    result = _import(config_path, file)

    assert result.exit_code == ExitCode.USAGE
    errors = result.output
    assert (
        "tillgångar.xlsx, row 3, column B (Tillgång): www.rapala.test: outside the declared "
        "scope domains of hyvala"
    ) in errors
    assert "row 4, column B (Tillgång): 127.60.2.10: outside the declared scope networks" in errors
    assert (
        "row 5, column B (Tillgång): 127.60.0.0/16: outside the declared scope networks" in errors
    )
    assert "row 6, column A (Typ):" in errors
    assert "row 7, column B: a formula, not a value" in errors
    assert "5 problems: nothing imported" in errors
    assert _counts(config_path) == before  # ok.hyvala.test was not imported either


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"kind,value,colour\nhost,a.hyvala.test,red\n",
         "x.csv, row 1, column C (colour): unknown heading 'colour'"),
        (b"kind;criticality\nhost;high\n", "x.csv, row 1: no 'value' column"),
        (b"kind,value\nhost,a.hyvala.test\n\xff\n", "x.csv: not UTF-8 text (byte 30)"),
        (b"kind,value,criticality\nhost,a.hyvala.test,extreme\n", "x.csv, row 2, column C"),
        (b"", "x.csv: no heading row"),
        (b"kind,value\nhost," + b"a" * 200_000, "x.csv, row 2: not CSV: field larger than"),
        (b"kind,value\n" + b"host,a.hyvala.test\n" * 10_001, "x.csv: more than 10000 rows"),
    ],
)  # fmt: skip
def test_bad_files_are_refused_naming_file_row_and_column(config_path, tmp_path, content, message):
    file = tmp_path / "x.csv"
    file.write_bytes(content)

    result = _import(config_path, file)

    assert result.exit_code == ExitCode.USAGE
    assert f"error: {message}" in result.output


def test_a_file_named_xlsx_that_is_no_workbook_is_refused(config_path, tmp_path):
    file = tmp_path / "kohteet.xlsx"
    file.write_bytes(b"Tyyppi;Kohde\nhost;a.hyvala.test\n")

    result = _import(config_path, file)

    assert result.exit_code == ExitCode.USAGE
    assert "error: kohteet.xlsx: not an XLSX workbook" in result.output
