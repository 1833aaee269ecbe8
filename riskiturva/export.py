"""Text that leaves the program: spreadsheet cells (CSV from the CLI and the dashboard) and
terminal lines (what scanned targets said, printed by the CLI)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# What makes a spreadsheet read a cell as a formula (or a DDE call): `=`, `+`, `-`, `@`, and
# the minus sign, also written full-width (`＝＋－＠`, which some Excel locales fold to ASCII)
# or small (`﹦﹢﹣﹫`); NFKC folds those. Spreadsheets skip what comes before such a start
# when they parse: spaces (any Unicode space), tabs, line breaks and other control or format
# characters, and a separator (`;`, `,`) that another delimiter would split off.
_FORMULA_STARTS = frozenset("=+-@\u2212")
_SKIPPED_BEFORE = frozenset(";,")
# Characters an XLSX file cannot hold (XML 1.0 forbids them; openpyxl refuses them): written
# as their escape (`\x1b`), in CSV too, so both formats hold the same text.
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _formula_like(text: str) -> bool:
    for character in text:
        folded = unicodedata.normalize("NFKC", character)
        if folded[:1] in _FORMULA_STARTS:
            return True
        category = unicodedata.category(character)
        if not (folded.isspace() or category[0] in "CZ" or folded in _SKIPPED_BEFORE):
            return False
    return False


def spreadsheet_text(value: str) -> str:
    """Outside-world text kept as text in a spreadsheet cell (OWASP CSV injection advice:
    prefix a quote): a value that could start a formula, after any spaces, line breaks,
    control characters or separators, gets a leading `'`; characters XLSX cannot hold are
    written as escapes, and every line break as LF (XML reads a lone CR as one). The same
    text goes into CSV and XLSX."""
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    text = _NOT_IN_XML.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    if value[:1] in ("\t", "\r", "\n") or _formula_like(value):
        return "'" + text
    return text


def spreadsheet_cell(value: Any) -> Any:
    """`spreadsheet_text` for text; any other value (a number, a day) as it is."""
    return spreadsheet_text(value) if isinstance(value, str) else value


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
