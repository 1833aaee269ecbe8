"""Reports in the dashboard: the archive of monthly reports, downloads by those who may see
the organisation only, and this month's report made now.

Given the two municipalities of the access tests with their November reports archived by
the monthly job (real WeasyPrint PDFs in the data directory), Hyvälä's people download
Hyvälä's and get nothing of Rapala's — by id, by slug, or by a path of their own making —
and every refusal is in the audit trail. In the browser (slow), Hyvälä's staff download
the archived PDF and make this month's one, and the files are Hyvälä's PDFs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from dashboard import ids
from riskiturva.reports.delivery import deliver_monthly
from riskiturva.reports.models import ArchivedReport
from tests.browser import Visitor, chromium, served
from tests.test_dashboard_access import NOW, PASSWORD, audited, call, sign_in

MONTH = "2026-11"


@pytest.fixture
def archived(make_estate, minimal_config, tmp_path):
    """The app, its store, and the id of each organisation's archived November report."""
    app, sessions, _ = make_estate()
    settings = minimal_config.settings.model_copy(update={"data_dir": tmp_path})
    deliveries = deliver_monthly(
        sessions, minimal_config.model_copy(update={"settings": settings}), MONTH, NOW
    )
    return app, sessions, {d.organisation: d.report_id for d in deliveries}


def pdf_text(content: bytes, folder: Path) -> str:
    path = folder / "report.pdf"
    path.write_bytes(content)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def page_text(app, client, path: str) -> str:
    response = call(app, client, f"{ids.PAGE}.children", {(ids.URL, "pathname"): path})
    return json.dumps(response.json, ensure_ascii=False)


def test_reports_are_served_only_to_who_may_see_the_organisation(archived, tmp_path):
    app, sessions, report = archived
    client, _ = sign_in(app, "hyvala-boss")  # management: reports are theirs too
    listing = page_text(app, client, "/org/hyvala/reports")
    assert f"/reports/{report['hyvala']}" in listing and "marraskuu 2026" in listing
    everything = page_text(app, client, "/reports")
    assert f"/reports/{report['hyvala']}" in everything
    assert f"/reports/{report['rapala']}" not in everything and "Rapalan" not in everything

    own = client.get(f"/reports/{report['hyvala']}")
    assert own.status_code == 200 and own.mimetype == "application/pdf"
    assert own.data.startswith(b"%PDF-")
    assert own.headers["Content-Disposition"].startswith("attachment")
    assert f"riskiturva-hyvala-{MONTH}-fi.pdf" in own.headers["Content-Disposition"]
    assert own.headers["Cache-Control"] == "no-store"
    assert "Hyvälän kunta" in pdf_text(own.data, tmp_path)
    assert audited(sessions, "report.downloaded")[-1].organisation == "hyvala"

    # Rapala's report by its id, a made-up id, Rapala's slug, paths of their own making.
    attempts = [
        f"/reports/{report['rapala']}",
        "/reports/999999",
        "/reports/-1",
        f"/reports/{report['rapala']}.pdf",
        "/reports/rapala/riskiturva-rapala-2026-11-fi.pdf",
        "/reports/..%2Frapala%2Friskiturva-rapala-2026-11-fi.pdf",
        "/org/rapala/reports/now/fi",
        "/org/nowhere/reports/now/fi",
        "/org/hyvala/reports/now/xx",
    ]
    for path in attempts:
        for method in (client.get, client.head):
            response = method(path)
            assert response.status_code == 404, path
            assert b"%PDF" not in response.data and b"Rapala" not in response.data, path
    elsewhere = page_text(app, client, "/org/rapala/reports")
    assert ids.NOT_FOUND in elsewhere and "Rapalan" not in elsewhere
    refused = [e.target for e in audited(sessions, "access.refused")]
    assert str(report["rapala"]) in refused and "999999" in refused and "rapala" in refused
    with sessions() as session:
        assert session.get(ArchivedReport, report["rapala"]).sent_at is None  # untouched

    # Rapala's own staff get theirs; nobody signed out gets anything.
    rapala, _ = sign_in(app, "rapala-staff")
    assert rapala.get(f"/reports/{report['rapala']}").data.startswith(b"%PDF-")
    assert rapala.get(f"/reports/{report['hyvala']}").status_code == 404
    anonymous = app.server.test_client().get(f"/reports/{report['hyvala']}")
    assert anonymous.status_code == 302 and b"%PDF" not in anonymous.data


def wait_for_download(folder: Path, name: str, timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = folder / name
        if done.exists() and not list(folder.glob("*.crdownload")):
            return done
        time.sleep(0.2)
    raise AssertionError(f"{name} was never downloaded; the folder has {list(folder.iterdir())}")


@pytest.mark.browser
@pytest.mark.slow
def test_staff_download_the_archived_report_and_make_this_months(archived, tmp_path):
    if shutil.which("pdftotext") is None:
        pytest.skip("needs poppler-utils")
    app, _, report = archived
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with served(app) as base, chromium() as driver:
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        visitor = Visitor(driver, base, "reports-hyvala-staff", PASSWORD)
        visitor.sign_in("hyvala-staff")
        visitor.wait("Hyvälän kunta", "home")
        driver.find_element(By.ID, "tab-reports").click()
        visitor.wait("marraskuu 2026", "reports-fi")
        driver.find_element(By.ID, f"report-{report['hyvala']}").click()
        archived_pdf = wait_for_download(downloads, f"riskiturva-hyvala-{MONTH}-fi.pdf")
        assert archived_pdf.read_bytes().startswith(b"%PDF-")
        text = pdf_text(archived_pdf.read_bytes(), tmp_path)
        assert "Hyvälän kunta" in text and "marraskuu 2026" in text and "Rapala" not in text

        driver.find_element(By.ID, "report-now-sv").click()
        now_pdf = wait_for_download(downloads, "riskiturva-hyvala-2026-12-sv.pdf")
        text = pdf_text(now_pdf.read_bytes(), tmp_path)
        assert "Hyvälä kommun" in text and "december 2026" in text
        visitor.console_is_clean("after-downloads")

        # In Swedish, the page and the archive speak Swedish; Rapala's report is not found.
        driver.get(f"{base}/language/sv?next=/org/hyvala/reports")
        visitor.wait("november 2026", "reports-sv")
        driver.get(f"{base}/reports/{report['rapala']}")
        assert "Rapala" not in driver.page_source and not list(downloads.glob("*rapala*"))
