"""Assets from a spreadsheet (XLSX or CSV) into an organisation's inventory.

The first row names the columns, in any of the three languages (`Tyyppi`/`Typ`/`Kind`,
`Kohde`/`Tillgång`/`Asset`, `Kriittisyys`/…/`Criticality`, `Tunnisteet`/…/`Tags`,
`Huomautus`/…/`Note`) or by key (`kind`, `value`, `criticality`, `tags`, `note`); kind and
asset are required. Every row is checked like `riskiturva assets add`: a known kind, a
valid value, inside the organisation's declared scope. A problem names the file, the row
and the column; with any problem nothing is imported. An asset already active is left as
it is. A dry run runs every check and every write in a transaction it rolls back.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from zipfile import BadZipFile

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from riskiturva.config import Asset as ConfigAsset
from riskiturva.config import Config
from riskiturva.i18n import LANGUAGES, translator
from riskiturva.inventory import InventoryError, add, outside_scope
from riskiturva.models import Asset, AssetState, Organisation
from riskiturva.store import sync_config

DOMAIN = "exports"
REQUIRED = ("kind", "value")
MAX_ROWS = 10_000
READ_ROWS = MAX_ROWS + 2  # the heading, the rows allowed, and one more to know there are more


def _headings() -> dict[str, str]:
    """Every accepted heading (lower case) → its column key."""
    found = {key: key for key in ("kind", "value", "criticality", "tags", "note")}
    for language in LANGUAGES:
        _ = translator(language, DOMAIN)
        for key, heading in (
            ("kind", _("Kind")),
            ("value", _("Asset")),
            ("criticality", _("Criticality")),
            ("tags", _("Tags")),
            ("note", _("Note")),
        ):
            found[heading.lower()] = key
    return found


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    row: int | None
    column: str | None  # `B (Kohde)`
    message: str

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}"


@dataclass(frozen=True, slots=True)
class ImportRow:
    row: int
    cells: dict[str, str]  # column key → text


@dataclass
class ImportResult:
    added: list[str] = field(default_factory=list)  # `kind value`
    unchanged: list[str] = field(default_factory=list)  # already active
    problems: list[Problem] = field(default_factory=list)
    dry_run: bool = False


class _Sheet:
    """The file's cells as text, with where each column is."""

    def __init__(self, path: Path):
        self.name = path.name
        self.rows: list[tuple[int, list[str]]] = []
        self.problems: list[Problem] = []  # the file cannot be read
        self.formulas: list[Problem] = []  # cells holding a formula, not a value
        if path.suffix.lower() == ".xlsx":
            self._read_xlsx(path)
        else:
            self._read_csv(path)

    def _read_xlsx(self, path: Path) -> None:
        try:
            workbook = load_workbook(path, read_only=True, data_only=False)
        except (BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
            self.problems.append(Problem(self.name, None, None, f"not an XLSX workbook ({exc})"))
            return
        try:
            worksheet = workbook.worksheets[0]
            for number, row in enumerate(worksheet.iter_rows(max_row=READ_ROWS), start=1):
                texts = []
                for index, cell in enumerate(row):
                    if cell.data_type == "f":
                        self.formulas.append(
                            Problem(
                                self.name,
                                number,
                                get_column_letter(index + 1),
                                "a formula, not a value",
                            )
                        )
                    value = cell.value
                    texts.append("" if value is None else str(value).strip())
                self.rows.append((number, texts))
        finally:
            workbook.close()

    def _read_csv(self, path: Path) -> None:
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            self.problems.append(
                Problem(self.name, None, None, f"not UTF-8 text (byte {exc.start})")
            )
            return
        first = text.split("\n", 1)[0]
        delimiter = max((";", ",", "\t"), key=first.count)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            for number, row in enumerate(reader, start=1):
                if number > READ_ROWS:
                    break
                self.rows.append((reader.line_num, [cell.strip() for cell in row]))
        except csv.Error as exc:  # a NUL byte, a field past the size limit
            self.problems.append(Problem(self.name, reader.line_num, None, f"not CSV: {exc}"))


@dataclass(frozen=True, slots=True)
class Parsed:
    rows: list[ImportRow]  # those without a formula: each is checked
    columns: dict[str, str]  # column key → where it is (`B (Kohde)`), for messages
    problems: list[Problem]  # of the file, its headings and its cells


def read(path: Path) -> Parsed:
    """The rows of the file with their columns by key, and what is wrong with its form."""
    sheet = _Sheet(path)
    problems = list(sheet.problems)
    if problems or not sheet.rows:
        return Parsed([], {}, problems or [Problem(sheet.name, None, None, "no heading row")])
    heading_row, headings = sheet.rows[0]
    known = _headings()
    keys: dict[int, str] = {}
    columns: dict[str, str] = {}
    for index, heading in enumerate(headings):
        if not heading:
            continue
        letter = f"{get_column_letter(index + 1)} ({heading})"
        key = known.get(heading.lower())
        if key is None:
            message = f"unknown heading {heading!r} (known: {', '.join(sorted(set(known)))})"
            problems.append(Problem(sheet.name, heading_row, letter, message))
        elif key in columns:
            problems.append(Problem(sheet.name, heading_row, letter, "a second column for it"))
        else:
            keys[index], columns[key] = key, letter
    for key in REQUIRED:
        if key not in columns:
            problems.append(Problem(sheet.name, heading_row, None, f"no {key!r} column"))
    if len(sheet.rows) > MAX_ROWS + 1:
        problems.append(Problem(sheet.name, None, None, f"more than {MAX_ROWS} rows"))
    if problems:  # without known columns, no row can be read
        return Parsed([], columns, problems)
    with_formulas = {p.row for p in sheet.formulas}
    rows = [
        ImportRow(number, {keys[i]: v for i, v in enumerate(cells) if i in keys})
        for number, cells in sheet.rows[1:]
        if any(cells) and number not in with_formulas
    ]
    return Parsed(rows, columns, sheet.formulas)


def _declared(parsed: Parsed, row: ImportRow, name: str) -> ConfigAsset | Problem:
    cells = row.cells
    tags = [t.strip() for t in cells.get("tags", "").replace(";", ",").split(",") if t.strip()]
    try:
        return ConfigAsset.model_validate(
            {
                "kind": cells.get("kind", ""),
                "value": cells.get("value", ""),
                "criticality": cells.get("criticality") or "medium",
                "tags": tuple(tags),
            }
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        field_name = str(error["loc"][0]) if error["loc"] else "value"
        message = str(error["msg"]).removeprefix("Value error, ")
        return Problem(name, row.row, parsed.columns.get(field_name, parsed.columns["value"]),
                       message)  # fmt: skip


def import_assets(
    sessions: sessionmaker[Session],
    config: Config,
    path: Path,
    *,
    organisation: str,
    visible: Collection[str],
    actor: str,
    now: dt.datetime,
    dry_run: bool = False,
) -> ImportResult:
    """Import the file's assets into `organisation` (origin `added`, active), in one
    transaction: committed when there is no problem and it is no dry run, else rolled back."""
    with sessions() as session:
        result = _import(session, config, path, organisation, visible, actor, now, dry_run)
        if result.problems or dry_run:
            session.rollback()
        else:
            session.commit()
    return result


def _import(
    session: Session,
    config: Config,
    path: Path,
    organisation: str,
    visible: Collection[str],
    actor: str,
    now: dt.datetime,
    dry_run: bool,
) -> ImportResult:
    result = ImportResult(dry_run=dry_run)
    parsed = read(path)
    result.problems += parsed.problems
    scope = config.organisation(organisation).scope
    chosen: list[tuple[ImportRow, ConfigAsset]] = []
    for row in parsed.rows:
        declared = _declared(parsed, row, path.name)
        if isinstance(declared, Problem):
            result.problems.append(declared)
            continue
        problem = outside_scope(scope, declared, organisation)
        if problem is not None:
            result.problems.append(Problem(path.name, row.row, parsed.columns["value"], problem))
            continue
        chosen.append((row, declared))
    if result.problems:
        return result
    sync_config(session, config, now=now)  # the organisation's row, in this transaction
    org = session.scalar(select(Organisation).where(Organisation.slug == organisation))
    active = set()
    if org is not None:
        active = {
            (a.kind, a.value)
            for a in session.scalars(
                select(Asset).where(
                    Asset.organisation_id == org.id, Asset.state == AssetState.ACTIVE
                )
            )
        }
    for row, declared in chosen:
        label = f"{declared.kind} {declared.value}"
        if (str(declared.kind), declared.value) in active:
            result.unchanged.append(label)
            continue
        try:
            add(session, config, organisation=organisation, kind=str(declared.kind),
                value=declared.value, visible=visible, actor=actor, now=now,
                criticality=str(declared.criticality), tags=declared.tags,
                owner_note=row.cells.get("note") or None)  # fmt: skip
        except InventoryError as exc:
            result.problems.append(Problem(path.name, row.row, parsed.columns["value"], str(exc)))
            continue
        active.add((str(declared.kind), declared.value))
        result.added.append(label)
    return result
