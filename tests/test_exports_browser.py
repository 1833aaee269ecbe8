"""The dashboard's spreadsheet downloads in headless Chromium, as a user gets them.

Given the two municipalities of the access tests, Hyvälä's staff click "Vie XLSX-tiedostoon"
on the findings page and "Vie CSV-tiedostoon" under the recovery priorities; a partner
administrator downloads the portfolio of both. The files arrive in the browser's download folder,
open as spreadsheets in Finnish, hold only what the reader may see (staff: nothing of
Rapala's), and every download is
in the audit trail. Slow: it starts Chromium.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import openpyxl
import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select

from dashboard import ids
from riskiturva.models_auth import AuditEvent
from tests.browser import Visitor, chromium, served
from tests.two_tenants import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _downloaded(folder: Path, suffix: str, timeout: float = 20) -> Path:
    """The file Chromium finished downloading into `folder` (bounded wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.suffix == suffix]
        if done:
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no {suffix} file arrived in {folder}: {list(folder.iterdir())}")


def test_staff_and_partner_download_spreadsheets_of_their_own(make_estate, tmp_path):
    app, sessions, _ = make_estate()
    with chromium() as driver, served(app) as base:
        visitor = Visitor(driver, base, "exports", PASSWORD)
        for person, steps in (
            (
                "hyvala-staff",
                [
                    ("/org/hyvala/findings", "Havaintoja näkyvissä", ids.EXPORT_XLSX, ".xlsx"),
                    ("/org/hyvala", "Korjausten tärkeysjärjestys", ids.SHEET_CSV, ".csv"),
                ],
            ),
            ("partner", [("/portfolio", "Salkku", ids.SHEET_XLSX, ".xlsx")]),
        ):
            visitor.sign_in(person)
            visitor.wait("Hyvälän kunta", f"{person}-home")
            for path, expect, button, suffix in steps:
                folder = tmp_path / f"{person}-{button}"
                folder.mkdir()
                driver.execute_cdp_cmd(
                    "Browser.setDownloadBehavior",
                    {"behavior": "allow", "downloadPath": str(folder)},
                )
                visitor.open(path, expect, f"{person}{path.replace('/', '-')}")
                driver.find_element(By.ID, button).click()
                file = _downloaded(folder, suffix)
                if suffix == ".xlsx":
                    sheet = openpyxl.load_workbook(file).active
                    rows = [[c.value for c in r] for r in sheet.iter_rows()]
                    assert sheet.freeze_panes == "A2"
                else:
                    text = file.read_bytes().decode("utf-8-sig")
                    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
                assert rows[0][0] == "Organisaatio", (person, path)
                shown = repr(rows)
                assert "Hyvälän kunta" in shown, shown
                if person == "partner":  # sees both municipalities
                    assert "Rapalan kunta" in shown
                else:
                    assert "Rapala" not in shown and "salainen" not in shown, (person, path)
                visitor.console_is_clean(f"{person}-{button}")
    with sessions() as session:
        exported = session.execute(
            select(AuditEvent.actor, AuditEvent.action).where(AuditEvent.action.like("%.exported"))
        ).all()
    assert sorted(exported) == [
        ("hyvala-staff", "findings.exported"),
        ("hyvala-staff", "priorities.exported"),
        ("partner", "portfolio.exported"),
    ]
