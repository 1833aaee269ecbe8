"""Words on the dashboard's pages: Finnish and Swedish pages show no English source string
(a msgid left untranslated) and no internal identifier (a collector id, an enum value such
as `web_host`, a check id where its title belongs); the same thing has the same word on
the dashboard and in the monthly report.

Given the two municipalities of the access tests (findings, a scan run with errors,
discovered assets, a decision), every page is rendered for each role in Finnish and
Swedish, the way the browser asks for it (the router callback), and every text a reader
sees is collected from the component tree: children, table headers and cells, options,
placeholders and labels, and the words Dash itself draws in a dropdown (Select All,
Search, No options found) unless the page gives them in the reader's language.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from dashboard import ids
from dashboard.components import category_label, collector_label, severity_label
from dashboard.i18n import text
from riskiturva import terms
from riskiturva.checks import load_registry
from riskiturva.config import AssetKind
from riskiturva.i18n import catalog, translator
from riskiturva.models import AssetOrigin, AssetState
from riskiturva.reports import render
from riskiturva.requirements import load_profiles
from tests import test_dashboard_access as access
from tests.test_dashboard_access import call, sign_in
from tests.two_tenants import asset_id

estate = access.estate

ROLES = ("hyvala-staff", "hyvala-boss", "partner")
TEXT_PROPS = ("placeholder", "title", "aria-label", "label")
COLLECTORS = {"tls", "dns_email", "services", "web", "discovery"}
ERROR_KINDS = {
    "timeout",
    "refused",
    "reset",
    "unreachable",
    "dns_failure",
    "out_of_scope",
    "protocol",
    "internal",
    "cancelled",
}
# Dash's own English words in every dcc.Dropdown, shown unless its `labels` prop says otherwise
# (dash_core_components.js, defaultLabels).
DROPDOWN_LABELS = {
    "select_all": "Select All",
    "deselect_all": "Deselect All",
    "selected_count": "{num_selected} selected",
    "search": "Search",
    "clear_search": "Clear search",
    "clear_selection": "Clear selection",
    "no_options_found": "No options found",
}
SNAKE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")  # web_host, dns_email, false_positive


def page_paths(finding_ids: dict[str, int], asset_ids: tuple[int, ...] = ()) -> list[str]:
    org = "/org/hyvala"
    own = [i for subject, i in finding_ids.items() if subject.startswith("127.60.1.")]
    return [
        "/",
        "/portfolio",
        "/alerts",
        "/audit",
        "/reports",
        org,
        *(
            f"{org}/{tab}"
            for tab in (
                "findings",
                "assets",
                "proposals",
                "score",
                "exceptions",
                "scans",
                "alerts",
                "reports",
            )
        ),
        *(f"/findings/{i}" for i in own),
        *(f"{org}/assets/{i}" for i in asset_ids),
    ]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _figure_texts(figure: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Axis labels, series names and titles of a Plotly figure (its JSON)."""
    for trace in figure.get("data") or []:
        for name in ("x", "y", "name", "text", "hovertext"):
            for value in _strings(trace.get(name)):
                yield value, "Graph"
    layout = figure.get("layout") or {}
    for name, value in layout.items():
        if name.startswith(("xaxis", "yaxis", "title")) and isinstance(value, dict):
            title = value.get("title", value)
            text_ = title.get("text") if isinstance(title, dict) else title
            if isinstance(text_, str):
                yield text_, "Graph"


def visible_texts(tree: Any) -> Iterator[tuple[str, str]]:
    """(text, component type) of everything a reader sees in a serialised layout."""
    if isinstance(tree, list):
        for item in tree:
            yield from visible_texts(item)
        return
    if not isinstance(tree, dict):
        return
    if "namespace" not in tree or "props" not in tree:
        for value in tree.values():
            yield from visible_texts(value)
        return
    kind, props = tree["type"], tree["props"]
    for child in _strings(props.get("children")):
        yield child, kind
    for name in TEXT_PROPS:
        if isinstance(props.get(name), str):
            yield props[name], kind
    for option in props.get("options") or []:
        if isinstance(option, dict) and isinstance(option.get("label"), str):
            yield option["label"], kind
    if kind == "Dropdown":
        labels = props.get("labels") or {}
        for key, default in DROPDOWN_LABELS.items():
            shown = labels.get(key, default).replace("{num_selected}", "2")  # as Dash fills it
            yield shown, "Dropdown labels"
    if kind == "Graph":
        yield from _figure_texts(props.get("figure") or {})
    if kind == "DataTable":
        columns = props.get("columns") or []
        shown = {c["id"] for c in columns if not c.get("hidden")}
        hidden = set(props.get("hidden_columns") or [])
        for column in columns:
            for name in _strings(column.get("name")):
                yield name, "DataTable header"
        for row in props.get("data") or []:
            for key, cell in row.items():
                if key in shown - hidden and isinstance(cell, str):
                    yield cell, "DataTable cell"
    for value in props.values():
        if isinstance(value, dict | list):
            yield from visible_texts(value)


def untranslated(language: str) -> set[str]:
    """English source strings of the catalogs a page draws on, which the reader's language
    says otherwise (not "Status", which is Swedish too)."""
    english, native = set(), set()
    for domain in ("dashboard", "terms", "reports", "scoring"):
        for msgid, translated in catalog(language, domain).items():
            native.add(translated)
            if translated != msgid and "{" not in msgid and len(msgid) > 2:
                english.add(msgid)
    dash = {label.replace("{num_selected}", "2") for label in DROPDOWN_LABELS.values()}
    return (english - native) | dash


def identifiers() -> set[str]:
    enums = {str(v) for e in (AssetKind, AssetOrigin, AssetState) for v in e}
    return COLLECTORS | ERROR_KINDS | enums | set(load_registry())


def finnish_requirement_texts() -> set[str]:
    """The requirement profiles' Finnish names, titles and cited sections that Swedish says
    otherwise ("9 §" is the same in both)."""
    found = set()
    for profile in load_profiles().values():
        texts = [profile.name, profile.applies]
        for requirement in profile.requirements:
            texts += [requirement.title, *(c.section for c in requirement.citations)]
        found |= {t["fi"] for t in texts if t["fi"] != t["sv"]}
    return found


def problems(texts: list[tuple[str, str]], language: str) -> list[str]:
    english, internal = untranslated(language), identifiers()
    finnish = finnish_requirement_texts() if language == "sv" else set()
    found = []
    for value, kind in texts:
        stripped = value.strip()
        if kind == "Code" or kind == "Pre":  # commands, evidence as JSON: technical by design
            continue
        if any(f in stripped for f in finnish):
            found.append(f"Finnish requirement text in {stripped!r} ({kind})")
        elif stripped in english:
            found.append(f"English {stripped!r} ({kind})")
        elif stripped in internal:
            found.append(f"identifier {stripped!r} ({kind})")
        elif SNAKE.search(stripped) and not stripped.startswith(("http", "/")):
            found.append(f"identifier in {stripped!r} ({kind})")
    return found


@pytest.mark.parametrize("language", ["fi", "sv"])
@pytest.mark.parametrize("role", ROLES)
def test_pages_show_no_english_and_no_identifiers(estate, role, language):
    app, sessions, finding_ids = estate
    assets = tuple(asset_id(sessions, value) for value in ("127.60.1.10", "127.60.1.11"))
    client, _ = sign_in(app, role)
    client.get(f"/language/{language}")
    failures = {}
    for path in page_paths(finding_ids, assets):
        response = call(app, client, f"{ids.PAGE}.children", {(ids.URL, "pathname"): path})
        assert response.status_code in (200, 204), path
        found = problems(list(visible_texts(response.json)), language)
        if found:
            failures[path] = found
    assert not failures, json.dumps(failures, ensure_ascii=False, indent=1)


@pytest.mark.parametrize("language", ["fi", "sv"])
def test_the_dashboard_and_the_report_use_the_same_words(language):
    """The badge on the dashboard is the word in the PDF: severities, areas, collectors."""
    dashboard_ = text(language)
    report = render._environment(translator(language, "reports")).globals
    for key in terms.SEVERITY:
        assert severity_label(dashboard_, key) == report["severity"](key), key
    for key in terms.CATEGORY:
        assert category_label(dashboard_, key) == report["category"](key), key
    for key in terms.COLLECTOR:
        assert collector_label(dashboard_, key) == report["collector"](key), key
    # Severity is not criticality: an asset's "high" criticality keeps its own word.
    assert severity_label(text("fi"), "high") == "Vakava"
    assert category_label(text("fi"), "services") == "Internetiin näkyvät palvelut"
    assert severity_label(text("sv"), "high") == "Allvarlig"


@pytest.mark.parametrize(
    ("language", "labels"), [("fi", ["Tuote", "Portti"]), ("sv", ["Produkt", "Port"])]
)
def test_the_finding_page_labels_evidence_in_the_reader_s_language(estate, language, labels):
    """Evidence keys are labels in the reader's language; the values stay as recorded, and
    the raw record is one click away under the technical details."""
    app, _, finding_ids = estate
    client, _ = sign_in(app, "hyvala-staff")
    client.get(f"/language/{language}")
    path = f"/findings/{finding_ids['127.60.1.10:3389/tcp']}"
    page = call(app, client, f"{ids.PAGE}.children", {(ids.URL, "pathname"): path}).json
    shown = {c["props"].get("id"): c for c in access.components(page)}
    rows = [
        (c["type"], c["props"]["children"])
        for c in access.components(shown[ids.EVIDENCE])
        if c["type"] in ("Dt", "Code") or isinstance(c["props"]["children"], str)
    ]
    # Text stays text; a number (or a list, a mapping) is compact JSON in <code>.
    assert rows == [
        ("Dt", labels[0]),
        ("Dd", "Microsoft Terminal Services"),
        ("Dt", labels[1]),
        ("Code", "3389"),
    ]
    assert json.loads(shown[ids.EVIDENCE_JSON]["props"]["children"]) == {
        "product": "Microsoft Terminal Services",
        "port": 3389,
    }
