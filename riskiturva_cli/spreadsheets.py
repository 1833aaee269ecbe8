"""`riskiturva export`: findings, priorities, exceptions and the portfolio as a spreadsheet
(CSV for Excel or XLSX), built by `riskiturva.tables` like the dashboard's downloads.

Registered by `riskiturva_cli.commands` (import that module, not this one: they share its helpers).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from riskiturva import tables
from riskiturva.checks import LANGUAGES, load_registry
from riskiturva.config import Config
from riskiturva.db import open_store


def _cli() -> Any:
    from riskiturva_cli import commands as cli

    return cli


def _config_option(function: Any) -> Any:
    return _cli().config_option(function)


@click.command("export")
@click.argument("kind", type=click.Choice([str(k) for k in tables.Kind]))
@_config_option
@click.option("--org", "orgs", multiple=True, help="Organisation slug (repeatable; default all).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="File to write (a spreadsheet, never the terminal).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([str(f) for f in tables.Format]),
    default=None,
    help="csv or xlsx  [default: from the file name's suffix, else csv]",
)
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    default="fi",
    show_default=True,
    help="Language of the header row and the values (and the CSV delimiter).",
)
@click.option("--status", "statuses", multiple=True, help="findings: open, resolved, accepted, …")
@click.option("--severity", "severities", multiple=True, help="findings: critical, high, …")
@click.option("--category", "categories", multiple=True, help="findings: tls, email, dns, …")
def export_command(
    kind: str,
    config_path: Path | None,
    orgs: Sequence[str],
    out: Path,
    fmt: str | None,
    lang: str,
    statuses: Sequence[str],
    severities: Sequence[str],
    categories: Sequence[str],
) -> None:
    """Write findings, priorities, exceptions or the portfolio as a spreadsheet.

    XLSX has typed cells (days as dates, numbers as numbers), a frozen header row with an
    autofilter and one column per asset tag; CSV is for Excel in the reader's locale
    (UTF-8 with a BOM; `;` between fields in Finnish and Swedish, `,` in English). Text
    from scanned targets that a spreadsheet would run as a formula is written with a
    leading `'`. The dashboard's download buttons give the same files.
    """
    cli = _cli()
    config: Config = cli.read_config(config_path)
    cli._require_known_orgs(config, orgs)
    chosen = fmt or ("xlsx" if out.suffix.lower() == ".xlsx" else "csv")
    filters = tables.FindingFilters(
        statuses=tuple(statuses), severities=tuple(severities), categories=tuple(categories)
    )
    if kind != tables.Kind.FINDINGS and filters != tables.FindingFilters():
        raise click.UsageError("--status, --severity and --category filter findings only")
    sessions = open_store(config)
    with sessions() as session:
        done = tables.export(
            session,
            [o.slug for o in config.organisations],
            kind,
            chosen,
            language=lang,
            now=cli._now(),
            registry=load_registry(),
            organisations=list(orgs) or None,
            filters=filters,
        )
    out.write_bytes(done.content)
    click.echo(f"{out}: {done.rows} rows ({chosen}, {len(done.content)} bytes)", err=True)
