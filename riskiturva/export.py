"""Exports people open in spreadsheets (CSV from the CLI and the dashboard)."""

from __future__ import annotations

from typing import Any

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> Any:
    """Spreadsheets run `=…` as a formula: outside-world text is kept as text (OWASP CSV
    injection advice: prefix a quote)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
