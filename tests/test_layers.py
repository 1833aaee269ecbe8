"""Data flows one way: the core never imports a face, faces read through the read model.

Every `import` in the packages' source is read (function-level ones too, which hide a
dependency but not from this), and the arrows are checked against the layers of
`../shared/DESIGN.md`: core (`riskiturva`) ← faces (`dashboard`, reports) ← the CLI
(`riskiturva_cli`), which is imported by nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("riskiturva", "dashboard", "riskiturva_cli", "collectors")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The modules of ours that `name` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    wanted: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            wanted |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            wanted |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    found = set()
    for target in wanted:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)
    return found


MODULES = _modules()
GRAPH = {name: imports_of(path, name, set(MODULES)) for name, path in MODULES.items()}


def arrows(source: str, target: str) -> list[tuple[str, str]]:
    """Every import from a module under `source` of a module under `target`."""

    def under(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    return sorted(
        (module, imported)
        for module, imported_set in GRAPH.items()
        if under(module, source)
        for imported in imported_set
        if under(imported, target)
    )


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("riskiturva", "dashboard"),  # the core never imports a face…
        ("riskiturva", "riskiturva_cli"),  # …nor the CLI above them
        ("dashboard", "riskiturva_cli"),
        ("collectors", "dashboard"),
        ("riskiturva.views", "riskiturva.reports"),  # the read model is below the reports
        ("riskiturva.scoring", "riskiturva.models"),  # scoring is pure: no database
        ("riskiturva.orm", "riskiturva"),  # Base is below every module of tables…
        ("riskiturva.models", "riskiturva.models_auth"),  # …which never import each other
        ("riskiturva.models", "riskiturva.reports"),
        ("riskiturva_cli.commands", "riskiturva_cli.docgen"),  # docgen reads the commands
    ],
)
def test_no_arrow_points_up(source, target):
    assert arrows(source, target) == []


@pytest.mark.parametrize("face", ["dashboard", "riskiturva.reports", "riskiturva_cli"])
def test_no_face_scores_or_reads_snapshots_itself(face):
    # What a face shows comes from riskiturva.views; the CLI's scan only takes the day's
    # snapshots after scanning (a write).
    found = arrows(face, "riskiturva.history")
    assert found in ([], [("riskiturva_cli.commands", "riskiturva.history")])


def test_the_rules_see_every_module():
    assert {"riskiturva.orm", "riskiturva.schema", "riskiturva_cli.docgen"} <= set(MODULES)
    assert GRAPH["riskiturva_cli.docgen"] >= {"riskiturva_cli.commands"}
