"""`riskiturva discover` and `riskiturva assets …` on the lab, through click's runner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from riskiturva.config import load_config
from riskiturva_cli import commands as cli
from tests.test_discovery_lab import copy_of_lab_config

pytestmark = pytest.mark.lab


def invoke(*args: str):
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def discovered(lab, tmp_path_factory):
    path = copy_of_lab_config(lab, tmp_path_factory.mktemp("cli"))
    result = invoke("discover", "--config", str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    return path, json.loads(result.output)


def queue(path, *args: str) -> list[dict]:
    result = invoke("assets", "proposals", "--config", str(path), "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_discover_reports_its_counts_as_json(discovered):
    _, report = discovered
    assert report["status"] == "ok"
    assert report["proposed"] == sum(o["proposed"] for o in report["organisations"].values())
    assert report["queries"] > 0 and report["proposed"] > 0


def test_proposals_show_their_evidence_and_filter_by_source(discovered):
    path, _ = discovered
    axfr = queue(path, "--source", "axfr")
    assert {p["organisation"] for p in axfr} == {"rapala"}
    backup = next(p for p in axfr if p["value"] == "varmuuskopio.rapala.test")
    assert {"source": "axfr", "via": "zone transfer of rapala.test from 127.53.0.1"} in [
        {k: e[k] for k in ("source", "via")} for e in backup["evidence"]
    ]
    assert backup["evidence"][0]["addresses"] == ["127.60.2.30"]


def test_bulk_accept_and_reject_then_export_declares_the_accepted(discovered, tmp_path):
    path, _ = discovered
    result = invoke("assets", "accept", "--config", str(path), "--all", "--org", "rapala",
                    "--source", "axfr", "--criticality", "high", "--tag", "backup")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rapala host varmuuskopio.rapala.test: active" in result.output
    hyvala = queue(path, "--org", "hyvala")
    decoy = next(p for p in hyvala if p["value"] == "verkkosivut.hyvala.test")
    result = invoke("assets", "reject", "--config", str(path), str(decoy["id"]),
                    "--reason", "an alias of www")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "verkkosivut.hyvala.test" not in {p["value"] for p in queue(path)}
    # Rejecting twice is refused with a clear message
    again = invoke("assets", "reject", "--config", str(path), str(decoy["id"]), "--reason", "x")
    assert again.exit_code == 2
    assert "not a proposal (it is rejected)" in again.output
    exported = tmp_path / "exported.toml"
    result = invoke("assets", "export", "--config", str(path), "--out", str(exported))
    assert result.exit_code == 0, result.output
    rapala = load_config(exported).organisation("rapala")
    backup = next(a for a in rapala.assets if a.value == "varmuuskopio.rapala.test")
    assert (backup.criticality, backup.tags) == ("high", ("backup",))


def test_outside_scope_and_changes_are_listed(discovered):
    path, _ = discovered
    result = invoke("assets", "outside-scope", "--config", str(path), "--format", "json")
    outside = {(r["organisation"], r["value"]) for r in json.loads(result.output)}
    assert ("hyvala", "127.70.0.10") in outside
    assert ("sekala", "ftp.palveluntarjoaja.test") in outside
    result = invoke("assets", "changes", "--config", str(path), "--format", "json")
    kinds = {r["kind"] for r in json.loads(result.output)}
    assert {"asset.proposed", "scope.seen_outside"} <= kinds


def test_retiring_a_declared_asset_is_refused(discovered):
    path, _ = discovered
    result = invoke("assets", "list", "--config", str(path), "--org", "hyvala", "--format", "json")
    declared = next(a for a in json.loads(result.output) if a["value"] == "www.hyvala.test")
    result = invoke("assets", "retire", "--config", str(path), str(declared["id"]), "--reason", "x")
    assert result.exit_code == 2
    assert "declared in the configuration" in result.output
