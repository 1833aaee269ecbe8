"""The reference docs say what the code does: generated pages are current, nothing undocumented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from riskiturva.alerts.settings import Channel, Contact
from riskiturva.collector import ErrorKind, collector_classes
from riskiturva.config import (
    Asset,
    OIDCMapping,
    OIDCSettings,
    Organisation,
    Partner,
    Scope,
    Settings,
    SharedScope,
)
from riskiturva_cli import docgen

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(docgen.PAGES))
def test_generated_page_is_current(name):
    expected = docgen.PAGES[name]()
    actual = (ROOT / "docs" / name).read_text(encoding="utf-8")
    assert actual == expected, f"docs/{name} is stale: run `python -m riskiturva_cli.docgen`"


def _fields(model: type[BaseModel], path: str):
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _fields(annotation, f"{path}.{name}")
        else:
            yield f"{path}.{name}", field


@pytest.mark.parametrize(
    ("model", "path"),
    [
        (Settings, "settings"),
        (Partner, "partners"),
        (Organisation, "organisations"),
        (Scope, "scope"),
        (Asset, "assets"),
        (SharedScope, "shared_scope"),
        (Channel, "channels"),
        (OIDCSettings, "settings.dashboard.oidc"),
        (OIDCMapping, "settings.dashboard.oidc.mappings"),
        (Contact, "contacts"),
        *((c.options_model, f"settings.collectors.{n}") for n, c in collector_classes().items()),
    ],
)
def test_every_setting_has_a_description(model, path):
    undocumented = [name for name, field in _fields(model, path) if not field.description]
    assert undocumented == []


def test_readme_names_every_top_level_command():
    from riskiturva_cli import main

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in main.list_commands(None) if f"riskiturva {name}" not in readme]
    assert missing == []


@pytest.mark.parametrize("name", sorted(collector_classes()))
def test_each_collector_says_what_it_checks_on_every_asset_kind_it_takes(name):
    collector = collector_classes()[name]
    assert set(collector.coverage) == set(collector.asset_kinds)
    assert all(text.strip() for text in collector.coverage.values())


def test_the_scan_output_schema_knows_every_error_kind():
    schema = json.loads((ROOT / "docs" / "scan-output.schema.json").read_text(encoding="utf-8"))
    assert set(schema["$defs"]["error_kind"]["enum"]) == {str(kind) for kind in ErrorKind}
