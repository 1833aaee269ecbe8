"""Configuration: the example stays valid; bad files name file, line, field and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskiturva.config import AssetKind, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "example.toml"


def _variant(tmp_path: Path, old: str, new: str, count: int = 1) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "variant.toml"
    path.write_text(text.replace(old, new, count), encoding="utf-8")
    return path


def _line_of(path: Path, fragment: str, occurrence: int = 1) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    hits = [n for n, line in enumerate(lines, start=1) if fragment in line]
    return hits[occurrence - 1]


def test_example_config_is_valid_and_resolves_paths():
    config = load_config(EXAMPLE)
    assert [o.slug for o in config.organisations] == ["jokilaakso", "harjuniemi", "saarela"]
    assert config.partners[0].organisations == ("jokilaakso", "harjuniemi", "saarela")
    assert config.settings.data_dir == (ROOT / "data").resolve()
    assert config.settings.effective_database_url.startswith("sqlite:///")
    url_asset = config.organisation("jokilaakso").assets[3]
    assert url_asset.kind is AssetKind.URL and url_asset.host_name == "asiointi.jokilaakso.example"


def test_wrong_criticality_names_line_field_and_value(tmp_path):
    path = _variant(
        tmp_path,
        'value = "192.0.2.70"\ncriticality = "low"',
        'value = "192.0.2.70"\ncriticality = "urgent"',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.field == "organisations[1].assets[2].criticality"
    assert problem.value == "urgent"
    assert problem.line == _line_of(path, 'criticality = "urgent"')
    assert str(path) in caught.value.describe()


def test_duplicate_slug_is_rejected(tmp_path):
    path = _variant(tmp_path, 'slug = "saarela"', 'slug = "jokilaakso"')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    # The partner's list now names a slug no organisation has, too.
    unlinked, problem = caught.value.problems
    assert unlinked.field == "partners[0].organisations[2]"
    assert problem.field == "organisations[2].slug"
    assert problem.value == "jokilaakso"
    assert problem.line == _line_of(path, 'slug = "jokilaakso"', occurrence=2)


@pytest.mark.parametrize(
    ("old", "new", "field", "value"),
    [
        (
            'value = "192.0.2.70"',
            'value = "203.0.113.9"',
            "organisations[1].assets[2].value",
            "203.0.113.9",
        ),
        (
            'value = "www.saarelankirjasto.example"',
            'value = "www.kirjasto.muualla.example"',
            "organisations[2].assets[1].value",
            "www.kirjasto.muualla.example",
        ),
        (
            'value = "192.0.2.0/28"',
            'value = "10.0.0.0/8"',
            "organisations[0].assets[5].value",
            "10.0.0.0/8",
        ),
    ],
)
def test_asset_outside_scope_is_a_validation_error(tmp_path, old, new, field, value):
    path = _variant(tmp_path, old, new)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert (problem.field, problem.value) == (field, value)
    assert "scope" in problem.message
    assert problem.line == _line_of(path, new)


def test_partner_member_must_exist(tmp_path):
    path = _variant(tmp_path, '"harjuniemi", "saarela"]', '"harjuniemi", "saarelaa"]')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems[0].field == "partners[0].organisations[2]"


def test_toml_syntax_error_has_a_line(tmp_path):
    path = _variant(tmp_path, 'slug = "harjuniemi"', 'slug = "harjuniemi')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems[0].line == _line_of(path, 'slug = "harjuniemi')


def test_unknown_field_is_rejected_not_ignored(tmp_path):
    path = _variant(tmp_path, "retries = 1", "retries = 1\nretry = 3")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems[0].field == "settings.resolver.retry"


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(tmp_path / "nope.toml")
