"""Never scanned is "not known", not "fine": the answer must not say yes without a check."""

from __future__ import annotations

import json

from click.testing import CliRunner

from riskiturva.checks import load_registry
from riskiturva.scoring import answer, score_organisation
from riskiturva_cli import commands as cli
from tests.conftest import MINIMAL_CONFIG


def test_an_unchecked_organisation_is_not_told_yes():
    empty = score_organisation("hyvala", [], [])
    registry = load_registry()
    assert answer(empty, [], registry=registry, language="fi").startswith("Kyllä")
    for language, opening in (("fi", "Ei tiedossa"), ("sv", "Okänt"), ("en", "Not known yet")):
        sentence = answer(empty, [], registry=registry, language=language, checked=False)
        assert sentence.startswith(opening)


def test_score_command_says_not_known_before_any_scan(tmp_path):
    path = tmp_path / "riskiturva.toml"
    path.write_text(MINIMAL_CONFIG, encoding="utf-8")
    result = CliRunner().invoke(cli.main, ["score", "--config", str(path), "--format", "json"])
    documents = json.loads(result.output)
    assert [(d["organisation"], d["checked"]) for d in documents] == [
        ("hyvala", False),
        ("rapala", False),
    ]
    assert documents[0]["answer"].startswith("Ei tiedossa")
