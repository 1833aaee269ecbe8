"""Text that leaves the program: spreadsheet cells (CSV from the CLI and the dashboard) and
terminal lines (what scanned targets said, printed by the CLI)."""

from __future__ import annotations

import unicodedata
from typing import Any

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> Any:
    """Spreadsheets run `=…` as a formula: outside-world text is kept as text (OWASP CSV
    injection advice: prefix a quote)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


# Characters a terminal would act on rather than print: C0/C1 controls (ESC starts colour
# and cursor sequences), line and paragraph separators, and format characters such as the
# bidirectional overrides that make text read differently from what it is.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def terminal_text(value: Any, limit: int | None = None) -> str:
    """Outside-world text safe to print on a terminal, on one line: every control or
    format character is shown as its escape (`\\x1b`, `\\u202e`); cut at `limit`."""
    text = "".join(
        ch
        if unicodedata.category(ch) not in _UNPRINTABLE
        else ch.encode("unicode_escape").decode("ascii")
        for ch in str(value)
    )
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
