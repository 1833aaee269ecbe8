"""`riskiturva report`: the file a person asks for, from the configured database."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from riskiturva import db
from riskiturva.store import make_engine, session_factory
from riskiturva_cli import main
from tests.test_reports_data import ESTATE, build_estate


def estate_config_file(tmp_path: Path) -> Path:
    """The synthetic estate in a SQLite database, and a configuration file pointing at it."""
    url = f"sqlite:///{tmp_path / 'riskiturva.db'}"
    engine = make_engine(url)
    db.upgrade(engine)
    build_estate(session_factory(engine))
    engine.dispose()
    path = tmp_path / "riskiturva.toml"
    path.write_text(f'[settings]\ndatabase_url = "{url}"\n{ESTATE}', encoding="utf-8")
    return path


def report(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["report", "--config", str(config), *args])


def test_report_writes_the_organisation_and_the_portfolio_reports(tmp_path):
    config = estate_config_file(tmp_path)
    html, pdf = tmp_path / "rapala.html", tmp_path / "seutu.pdf"

    result = report(
        config,
        "--org",
        "rapala",
        "--month",
        "2026-10",
        "--lang",
        "sv",
        "--format",
        "html",
        "--out",
        str(html),
    )
    assert result.exit_code == 0, result.output
    assert "Informationssäkerhetsrapport: Rapala kommun, oktober 2026" in result.output
    assert "<h1>Informationssäkerhetsrapport: Rapala kommun</h1>" in html.read_text()

    result = report(config, "--partner", "seutu", "--month", "2026-10", "--out", str(pdf))
    assert result.exit_code == 0, result.output
    assert "Yhteenvetoraportti: Seudun ICT-palvelut, lokakuu 2026" in result.output
    assert pdf.read_bytes().startswith(b"%PDF-")


def test_report_refuses_unclear_requests(tmp_path):
    config = estate_config_file(tmp_path)
    both = report(config, "--org", "rapala", "--partner", "seutu")
    assert both.exit_code == 2 and "exactly one of --org and --partner" in both.output
    month = report(config, "--org", "rapala", "--month", "10/2026")
    assert month.exit_code == 2 and "YYYY-MM" in month.output
    partner = report(config, "--partner", "nobody")
    assert partner.exit_code == 2 and "no partner 'nobody'" in partner.output
