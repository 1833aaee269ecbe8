"""Spreadsheet exports (findings, priorities, exceptions, portfolio) as CSV and XLSX, and
formula injection: a corpus of values that spreadsheets would run stays text in both.

Given a store with two municipalities whose findings' subjects and decisions' reasons hold
the corpus, the exports in each language have the reader's headers, typed cells (days as
dates, numbers as numbers, text as text), a frozen and filtered header row, one column per
asset tag; CSV for Excel (BOM, `;` in Finnish and Swedish). LibreOffice, opening the XLSX
(`soffice --headless --convert-to csv`), gives the same rows as our CSV, and evaluates
nothing of the corpus in either file (slow: it starts LibreOffice).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from babel.messages.extract import extract_from_file
from click.testing import CliRunner
from sqlalchemy import select

from riskiturva import tables
from riskiturva.checks import load_registry
from riskiturva.config import Config, load_config
from riskiturva.db import open_store
from riskiturva.export import spreadsheet_text
from riskiturva.i18n import catalog
from riskiturva.models import Finding, FindingStatus, ScanRun, SubjectState
from riskiturva.store import ObservedFinding, decide, reconcile, sync_config
from riskiturva_cli import main
from tests.conftest import MINIMAL_CONFIG, T0

NOW = T0 + dt.timedelta(days=3)
BOTH = ["hyvala", "rapala"]

# What a spreadsheet would run, or run after folding, trimming or splitting it.
HOSTILE = [
    "=1+1",
    "+1+1",
    "-1+1",
    "@SUM(A1:A2)",
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://127.0.0.1/","x")',
    ";=1+1",
    ",=1+1",
    "；＝1+1",
    " =1+1",
    "   +1+1",
    "\u00a0=1+1",
    "\u3000=1+1",
    "\u200b=1+1",
    "\n=1+1",
    "\r=1+1",
    "\t=1+1",
    "\t",
    "＝1+1",
    "＋1+1",
    "－1+1",
    "＠SUM(A1:A2)",
    "﹦1+1",
    "\u22121+1",
    "\x1b=1+1",
]
# Text that must come through as written.
BENIGN = ["www.hyvala.test", "a=b", "1-2", "Ääninen & Öljy <b>", "Sää 'hyvä'", "127.60.1.10"]


def test_every_hostile_value_gets_a_quote_and_benign_text_stays_as_written():
    for value in HOSTILE:
        assert spreadsheet_text(value).startswith("'"), repr(value)
    for value in BENIGN:
        assert spreadsheet_text(value) == value
    # Control characters XLSX cannot hold are written as their escapes, in both formats.
    assert spreadsheet_text("\x1b=1+1") == "'\\x1b=1+1"
    assert spreadsheet_text("a\x00b") == "a\\x00b"


def _finding(subject: str, asset: str) -> ObservedFinding:
    return ObservedFinding(
        "services.exposed.rdp", subject, asset, asset, "services", "high", {"port": 3389}
    )


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """Hyvälä with a finding for every corpus value on its tagged asset and one on its
    untagged one, a decision whose reason and author are hostile; Rapala with one finding."""
    tmp_path = tmp_path_factory.mktemp("tables")
    text = MINIMAL_CONFIG.replace('data_dir = "data"', f'data_dir = "{tmp_path / "data"}"')
    path = tmp_path / "riskiturva.toml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    sessions = open_store(config)
    with sessions.begin() as session:
        orgs = sync_config(session, config, now=T0)
        run = ScanRun(
            collector="services",
            organisations=BOTH,
            status="ok",
            started_at=T0,
            finished_at=T0 + dt.timedelta(minutes=1),
            counts={"targets": 3},
        )
        session.add(run)
        session.flush()
        observed = [_finding(v, "127.60.1.10") for v in [*HOSTILE, *BENIGN]]
        observed.append(_finding("127.60.1.11:3389/tcp", "127.60.1.11"))
        theirs = [_finding("salainen", "127.60.2.10")]
        for slug, found in (("hyvala", observed), ("rapala", theirs)):
            reconcile(
                session,
                organisation=orgs[slug],
                collector="services",
                run_id=run.id,
                observed=found,
                scanned_ok={f.subject for f in found},
                now=T0,
            )
        # Hyvälä's last successful scan: a moment with minutes, in the portfolio
        session.add(
            SubjectState(
                organisation_id=orgs["hyvala"].id,
                collector="services",
                subject="127.60.1.10",
                asset="127.60.1.10",
                last_status="ok",
                last_scanned_at=T0 + dt.timedelta(minutes=65),
                last_success_at=T0 + dt.timedelta(minutes=65),
                last_run_id=run.id,
            )
        )
        session.flush()
        accepted = session.scalar(select(Finding).where(Finding.subject == "a=b"))
        decide(
            session,
            finding_id=accepted.id,
            visible=["hyvala"],
            decision=FindingStatus.ACCEPTED,
            actor="@hyvala-it",
            reason='=HYPERLINK("http://127.0.0.1/","x")',
            until=NOW + dt.timedelta(days=10),
            now=T0,
        )
    return config


def _export(config: Config, kind: str, fmt: str, language: str, orgs=("hyvala",)) -> tables.Export:
    with open_store(config)() as session:
        return tables.export(
            session,
            BOTH,
            kind,
            fmt,
            language=language,
            now=NOW,
            registry=load_registry(),
            organisations=list(orgs),
        )


def _xlsx(content: bytes) -> Any:
    return openpyxl.load_workbook(io.BytesIO(content)).active


def _csv(content: bytes, language: str) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    text = content.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=tables.DELIMITERS[language]))


def test_xlsx_has_typed_cells_a_frozen_filtered_header_tag_columns_and_inert_text(config):
    # Given Hyvälä's findings, when exported as XLSX for a Finnish reader
    done = _export(config, "findings", "xlsx", "fi")
    sheet = _xlsx(done.content)

    # Then the header is Finnish, bold, frozen and filtered over every row
    header = [c.value for c in sheet[1]]
    assert header[:4] == ["Organisaatio", "Vakavuus", "Havainto", "Kohta"]
    assert "Tunniste: e-service" in header
    assert sheet.freeze_panes == "A2"
    last = openpyxl.utils.get_column_letter(len(header))
    assert sheet.auto_filter.ref == f"A1:{last}{done.rows + 1}"
    assert all(c.font.b for c in sheet[1])
    assert done.rows == len(HOSTILE) + len(BENIGN) + 1 == sheet.max_row - 1
    assert done.filename == f"findings-hyvala-{NOW.date().isoformat()}.xlsx"
    rows = [dict(zip(header, (c for c in r), strict=True)) for r in sheet.iter_rows(min_row=2)]
    # Days are dates, numbers numbers, tags flags
    first = rows[0]
    assert first["Ensimmäinen havainto"].is_date
    assert first["Ensimmäinen havainto"].value == dt.datetime(2026, 11, 2)
    assert first["Ensimmäinen havainto"].number_format == "d.m.yyyy"
    assert first["Numero"].data_type == "n"
    tagged = {r["Kohta"].value: r["Tunniste: e-service"].value for r in rows}
    assert tagged["127.60.1.11:3389/tcp"] == 0
    assert tagged["www.hyvala.test"] == 1
    # And nothing is a formula: the corpus is text with its quote, the benign as written
    assert not [c.coordinate for r in sheet.iter_rows() for c in r if c.data_type == "f"]
    subjects = {r["Kohta"].value for r in rows}
    assert subjects >= {spreadsheet_text(v) for v in HOSTILE} | set(BENIGN)
    assert all(r["Kohta"].data_type == "s" for r in rows)
    # Rapala's finding is not in Hyvälä's export
    assert "salainen" not in subjects


@pytest.mark.parametrize(("language", "delimiter"), [("fi", ";"), ("sv", ";"), ("en", ",")])
def test_csv_is_for_excel_in_the_readers_language(config, language, delimiter):
    done = _export(config, "exceptions", "csv", language)

    assert done.content.startswith(b"\xef\xbb\xbf")
    first_line = done.content.decode("utf-8-sig").splitlines()[0]
    assert first_line.count(delimiter) == len(_csv(done.content, language)[0]) - 1
    header, row = _csv(done.content, language)
    expected = {"fi": "Perustelu", "sv": "Motivering", "en": "Justification"}[language]
    record = dict(zip(header, row, strict=True))
    assert record[expected] == '\'=HYPERLINK("http://127.0.0.1/","x")'
    decided_by = {"fi": "Päättäjä", "sv": "Beslutat av", "en": "Decided by"}[language]
    assert record[decided_by] == "'@hyvala-it"
    until = {"fi": "Voimassa asti", "sv": "Giltigt till", "en": "Valid until"}[language]
    assert record[until] == {"en": "2026-11-15"}.get(language, "15.11.2026")


@pytest.mark.parametrize("kind", list(tables.Kind))
@pytest.mark.parametrize("language", ["fi", "sv"])
def test_every_header_is_in_the_readers_language_and_both_formats_agree(config, kind, language):
    csv_rows = _csv(_export(config, kind, "csv", language, BOTH).content, language)
    sheet = _xlsx(_export(config, kind, "xlsx", language, BOTH).content)
    english = _csv(_export(config, kind, "csv", "en", BOTH).content, "en")[0]

    assert [c.value for c in sheet[1]] == csv_rows[0]
    assert sheet.max_row == len(csv_rows) > 1
    same_in_both = {"Organisation", "Status", "Info"}  # Swedish spells them alike
    for ours, theirs in zip(csv_rows[0], english, strict=True):
        assert ours != theirs or ours in same_in_both or ours.startswith("Tag"), ours


def test_the_portfolio_has_scores_as_decimals_and_the_last_scan_as_a_moment(config):
    sheet = _xlsx(_export(config, "portfolio", "xlsx", "fi", BOTH).content)
    header = [c.value for c in sheet[1]]
    hyvala = dict(zip(header, sheet[2], strict=True))
    assert hyvala["Organisaatio"].value == "Hyvälän kunta"
    assert hyvala["Pisteet"].data_type == "n" and hyvala["Pisteet"].number_format == "0.0"
    moment = hyvala["Viimeisin onnistunut skannaus"]
    assert moment.value == dt.datetime(2026, 11, 2, 11, 5)  # 09:05 UTC in Helsinki
    assert moment.number_format == 'd.m.yyyy h"."mm'
    row = _csv(_export(config, "portfolio", "csv", "fi", BOTH).content, "fi")[1]
    assert row[header.index("Viimeisin onnistunut skannaus")] == "2.11.2026 11.05"
    assert "," in row[header.index("Pisteet")]


# --- LibreOffice: what a spreadsheet program makes of both files ---------------------------

SOFFICE = shutil.which("soffice")
LO_LOCALES = {"fi": "fi-FI", "sv": "sv-FI", "en": "en-GB"}
LO_LANGUAGE_IDS = {"fi": 1035, "sv": 2077, "en": 2057}  # the CSV filter's language (LCID)
LO_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Setup/L10N"><prop oor:name="ooSetupSystemLocale" oor:op="fuse">
<value>{locale}</value></prop></item></oor:items>
"""


def _soffice(profile: Path, *args: str) -> None:
    """LibreOffice headless with a profile of its own (its locale set: numbers and days are
    shown as the reader's locale writes them)."""
    result = subprocess.run(
        [SOFFICE, f"-env:UserInstallation={profile.as_uri()}", "--headless", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
@pytest.mark.skipif(SOFFICE is None, reason="needs LibreOffice (libreoffice-calc-nogui)")
@pytest.mark.parametrize("language", ["fi", "sv", "en"])
def test_libreoffice_reads_the_xlsx_as_the_csv_and_evaluates_nothing_in_either(
    config, tmp_path, language
):
    # Given every kind exported as XLSX and CSV for both organisations
    ours, theirs, imported = tmp_path / "ours", tmp_path / "lo-csv", tmp_path / "lo-xlsx"
    ours.mkdir()
    for kind in tables.Kind:
        for fmt in tables.Format:
            (ours / f"{kind}.{fmt}").write_bytes(_export(config, kind, fmt, language, BOTH).content)
    profile = tmp_path / "profile"
    (profile / "user").mkdir(parents=True)
    (profile / "user" / "registrymodifications.xcu").write_text(
        LO_PROFILE.format(locale=LO_LOCALES[language]), encoding="utf-8"
    )
    separator = ord(tables.DELIMITERS[language])

    # When LibreOffice converts each XLSX to CSV (cells as shown, in the reader's locale)
    _soffice(
        profile,
        "--convert-to",
        f"csv:Text - txt - csv (StarCalc):{separator},34,76,1",
        "--outdir",
        str(theirs),
        *(str(ours / f"{kind}.xlsx") for kind in tables.Kind),
    )

    # Then it gives the same rows as our CSV, the corpus as the text we wrote
    for kind in tables.Kind:
        expected = _csv((ours / f"{kind}.csv").read_bytes(), language)
        text = (theirs / f"{kind}.csv").read_text(encoding="utf-8")
        got = list(csv.reader(io.StringIO(text, newline=""), delimiter=chr(separator)))
        assert got == expected, kind
    findings = _csv((ours / "findings.csv").read_bytes(), language)
    subjects = {row[3] for row in findings[1:]}
    assert subjects >= {spreadsheet_text(v) for v in HOSTILE}

    # And when it opens our CSV with formula evaluation on, nothing becomes a formula
    _soffice(
        profile,
        f"--infilter=Text - txt - csv (StarCalc):{separator},34,76,1,,"
        f"{LO_LANGUAGE_IDS[language]},false,true,false,false,false,-1,true",
        "--convert-to",
        "xlsx",
        "--outdir",
        str(imported),
        *(str(ours / f"{kind}.csv") for kind in tables.Kind),
    )
    for kind in tables.Kind:
        sheet = _xlsx((imported / f"{kind}.xlsx").read_bytes())
        formulas = [c.coordinate for r in sheet.iter_rows() for c in r if c.data_type == "f"]
        assert not formulas, (kind, formulas)
    sheet = _xlsx((imported / "findings.xlsx").read_bytes())
    read = {r[3].value for r in sheet.iter_rows(min_row=2)}
    assert read >= {spreadsheet_text(v) for v in HOSTILE}


def test_the_cli_writes_what_the_dashboard_downloads(config, tmp_path):
    out = tmp_path / "havainnot.xlsx"
    result = CliRunner().invoke(
        main,
        ["export", "findings", "--config", str(config.source), "--org", "hyvala", "--out",
         str(out), "--status", "open"],
        obj={"clock": lambda: NOW},
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert f"{out}: {len(HOSTILE) + len(BENIGN)} rows (xlsx," in result.output
    module = _xlsx(_export(config, "findings", "xlsx", "fi").content)
    cli = _xlsx(out.read_bytes())
    open_rows = [r for r in module.iter_rows(values_only=True) if r[6] != "Hyväksytty riski"]
    assert list(cli.iter_rows(values_only=True)) == open_rows


EXPORT_CODE = [Path(tables.__file__), Path(tables.__file__).with_name("asset_import.py")]


def test_every_word_of_the_exports_is_in_both_catalogs_and_none_is_left_over():
    used = {
        message
        for path in EXPORT_CODE
        for _line, message, _comments, _context in extract_from_file(
            "python", str(path), keywords={"_": None}
        )
    }
    for language in ("fi", "sv"):
        assert set(catalog(language, "exports")) == used, language
