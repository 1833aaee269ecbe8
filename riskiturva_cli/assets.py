"""`riskiturva sync`, `riskiturva discover` and `riskiturva assets …`: the inventory and its
review queue on the command line. Whoever holds the configuration file is trusted with all
of its organisations; decisions are audited as `cli:<os user>`.

Registered by `riskiturva_cli.commands` (import that module, not this one: they share its helpers).
"""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text
from sqlalchemy.orm import Session

from riskiturva import views
from riskiturva.config import AssetKind, Config, Criticality, Scope
from riskiturva.db import open_store
from riskiturva.exit_codes import ExitCode
from riskiturva.export import spreadsheet_cell
from riskiturva.inventory import (
    InventoryError,
    accept,
    add,
    export_document,
    list_assets,
    reject,
    retire,
    update,
)
from riskiturva.models import Asset, AssetState, RunStatus
from riskiturva.store import NotVisible, sync_config

FORMATS = ("table", "json", "csv")


def _cli() -> Any:
    from riskiturva_cli import commands as cli

    return cli


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _config_option(function: Any) -> Any:
    return _cli().config_option(function)


def _read(config_path: Path | None, orgs: Sequence[str] = ()) -> Config:
    cli = _cli()
    config: Config = cli.read_config(config_path)
    cli._require_known_orgs(config, orgs)
    return config


def _visible(config: Config, orgs: Sequence[str]) -> list[str]:
    return list(orgs) or [o.slug for o in config.organisations]


def asset_record(asset: views.InventoryAsset) -> dict[str, Any]:
    """One asset as the CLI's JSON shows it (evidence included)."""
    return {
        "id": asset.id,
        "organisation": asset.organisation,
        "kind": asset.kind,
        "value": asset.value,
        "state": asset.state,
        "origin": asset.origin,
        "criticality": asset.criticality,
        "tags": list(asset.tags),
        "owner_note": asset.owner_note,
        "first_seen": asset.first_seen.isoformat(),
        "last_seen": asset.last_seen.isoformat(),
        "retirement_proposed": asset.proposal is views.ProposalKind.RETIREMENT,
        "gone_runs": asset.gone_runs,
        "decided_by": asset.decided_by,
        "reason": asset.reason,
        "evidence": [
            {
                "source": e.source,
                "via": e.via,
                "addresses": list(e.detail.get("addresses", ())),
                "first_seen": e.first_seen.isoformat(),
                "last_seen": e.last_seen.isoformat(),
            }
            for e in asset.evidence
        ],
    }


def _scopes(config: Config) -> dict[str, Scope]:
    return {o.slug: o.scope for o in config.organisations}


def _queue(session: Session, config: Config, visible: Sequence[str]) -> list[dict[str, Any]]:
    """Every visible organisation's review queue, as records."""
    scopes = _scopes(config)
    return [
        asset_record(a)
        for slug in visible
        for a in views.review_queue(session, visible, slug, scopes=scopes).proposals
    ]


def _print_assets(records: list[dict[str, Any]], fmt: str, *, queue: bool = False) -> None:
    if fmt == "json":
        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
        return
    if fmt == "csv":
        columns = ["id", "organisation", "kind", "value", "state", "origin", "criticality", "tags"]
        writer = csv.DictWriter(sys.stdout, fieldnames=[*columns, "sources"], extrasaction="ignore")
        writer.writeheader()
        for r in records:
            row = {**r, "tags": " ".join(r["tags"]), "sources": " ".join(_sources(r))}
            writer.writerow({k: spreadsheet_cell(v) for k, v in row.items()})
        return
    title = "proposal" if queue else "state"
    table = Table("id", "organisation", "kind", "asset", title, "criticality", "evidence")
    for r in records:
        state = r["state"]
        if r["retirement_proposed"]:
            state = "retire? (gone)" if queue else f"{state}, retire? (gone)"
        elif queue:
            state = "new"
        evidence = "; ".join(f"{e['source']}: {e['via']}" for e in r["evidence"][:4])
        if len(r["evidence"]) > 4:
            evidence += f"; +{len(r['evidence']) - 4} more"
        addresses = sorted({a for e in r["evidence"] for a in e["addresses"]})
        if addresses:
            evidence += f" → {', '.join(addresses[:4])}"
        table.add_row(
            str(r["id"]),
            r["organisation"],
            r["kind"],
            Text(r["value"]),
            state,
            r["criticality"],
            Text(evidence),
        )
    _cli()._console().print(table)
    click.echo(f"{len(records)} {'proposals' if queue else 'assets'}")


def _sources(record: dict[str, Any]) -> list[str]:
    return sorted({e["source"] for e in record["evidence"]})


@click.command("sync")
@_config_option
def sync_command(config_path: Path | None) -> None:
    """Import the configuration's organisations and assets into the inventory (idempotent).

    Declared assets become active assets of origin `configuration`; a configuration asset
    no longer declared is retired, never deleted. `scan` and `discover` do the same first.
    """
    config = _read(config_path)
    sessions = open_store(config)
    with sessions.begin() as session:
        sync_config(session, config)
        rows = list_assets(session, [o.slug for o in config.organisations])
    by_state: dict[str, int] = {}
    for row in rows:
        by_state[row.state] = by_state.get(row.state, 0) + 1
    summary = ", ".join(f"{count} {state}" for state, count in sorted(by_state.items()))
    click.echo(f"{len(config.organisations)} organisations; assets: {summary or 'none'}")


@click.command(
    "discover",
    epilog=_cli().exit_status_help(
        ExitCode.OK, ExitCode.FAILED, ExitCode.USAGE, ExitCode.INTERRUPTED
    ),
)
@_config_option
@click.option("--org", "orgs", multiple=True, help="Organisation slug (repeatable; default all).")
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table")
def discover_command(config_path: Path | None, orgs: Sequence[str], fmt: str) -> None:
    """Discover assets the organisations did not declare, and propose them for review.

    Sources and their costs: docs/discovery.md (`[settings.discovery] sources`). Nothing
    outside an organisation's declared scope is resolved further, contacted or scanned:
    such names and addresses are listed by `riskiturva assets outside-scope`. Proposals
    wait in `riskiturva assets proposals` and are never scanned before someone accepts them.
    Errors of single sources (a name server that timed out) are shown and do not fail the
    run.
    """
    from riskiturva.discovery import run_discovery
    from riskiturva.runner import build_context

    cli = _cli()
    config = _read(config_path, orgs)
    sessions = open_store(config)
    context = build_context(config)
    with cli._stop_on_sigterm(context.cancelled):
        report = run_discovery(sessions, config, organisations=orgs or None, context=context)
    if fmt == "json":
        document = {"run": report.run_id, "status": str(report.status), "message": report.message}
        click.echo(json.dumps({**document, **report.as_dict()}, ensure_ascii=False, indent=2))
    else:
        columns = ("new proposals", "auto-accepted", "seen again", "outside scope (new)",
                   "gone", "new certificates", "wildcard answers")  # fmt: skip
        table = Table("organisation", *columns)
        for slug, c in report.organisations.items():
            table.add_row(slug, str(c.proposed), str(c.auto_accepted), str(c.seen_again),
                          str(c.outside_scope), str(c.gone), str(c.certificates_new),
                          str(c.wildcard_answers))  # fmt: skip
        console = cli._console()
        console.print(table)
        console.print(
            Text(
                f"run {report.run_id}: {report.status}, {report.queries} DNS queries, "
                f"{report.errors} errors, {report.duration_s:.1f} s"
            )
        )
        if report.message:
            console.print(Text(report.message))
    if report.status is RunStatus.INTERRUPTED:
        sys.exit(ExitCode.INTERRUPTED)
    if report.status is RunStatus.FAILED:
        sys.exit(ExitCode.FAILED)


@click.group("assets")
def assets_group() -> None:
    """The inventory: assets, proposals from discovery, decisions, import from a
    spreadsheet, export to TOML."""


def _listing(
    config_path: Path | None, orgs: Sequence[str], *, states: Sequence[str], origins: Sequence[str]
) -> list[dict[str, Any]]:
    config = _read(config_path, orgs)
    sessions = open_store(config)
    visible = _visible(config, orgs)
    with sessions.begin() as session:
        sync_config(session, config)
        return [
            asset_record(a)
            for slug in visible
            for a in views.inventory(session, visible, slug, states=states)
            if not origins or a.origin in origins
        ]


@assets_group.command("list")
@_config_option
@click.option("--org", "orgs", multiple=True, help="Organisation slug (repeatable).")
@click.option("--state", "states", multiple=True, type=click.Choice([str(s) for s in AssetState]))
@click.option("--origin", "origins", multiple=True, help="configuration, discovered, added.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def assets_list(
    config_path: Path | None,
    orgs: Sequence[str],
    states: Sequence[str],
    origins: Sequence[str],
    fmt: str,
) -> None:
    """List the inventory (every state unless --state is given)."""
    _print_assets(_listing(config_path, orgs, states=states, origins=origins), fmt)


@assets_group.command("proposals")
@_config_option
@click.option("--org", "orgs", multiple=True, help="Organisation slug (repeatable).")
@click.option("--source", "sources", multiple=True, help="Only proposals with this evidence.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def assets_proposals(
    config_path: Path | None, orgs: Sequence[str], sources: Sequence[str], fmt: str
) -> None:
    """The review queue: proposed assets and retirement proposals, with their evidence."""
    config = _read(config_path, orgs)
    sessions = open_store(config)
    with sessions() as session:
        records = _queue(session, config, _visible(config, orgs))
    if sources:
        records = [r for r in records if set(_sources(r)) & set(sources)]
    _print_assets(records, fmt, queue=True)


def _decide(
    config_path: Path | None,
    ids: Sequence[int],
    every: bool,
    orgs: Sequence[str],
    sources: Sequence[str],
    action: Any,
) -> None:
    """Run `action(session, ids, visible, now)` on the given ids or the whole queue."""
    if bool(ids) == every:
        raise click.UsageError("give asset ids, or --all (with --org / --source to narrow it)")
    config = _read(config_path, orgs)
    visible = _visible(config, orgs)
    sessions = open_store(config)
    now = dt.datetime.now(dt.UTC)
    try:
        with sessions.begin() as session:
            if every:
                queue = _queue(session, config, visible)
                chosen = [r["id"] for r in queue if not sources or set(_sources(r)) & set(sources)]
            else:
                chosen = list(ids)
            decided = action(session, chosen, visible, now)
            lines = [f"{a.organisation.slug} {a.kind} {a.value}: {a.state}" for a in decided]
    except (InventoryError, NotVisible) as exc:
        message = str(exc) if isinstance(exc, InventoryError) else f"no asset {exc.args[0]}"
        click.echo(f"error: {message}", err=True)
        sys.exit(ExitCode.USAGE)
    for line in lines:
        click.echo(line)
    click.echo(f"{len(lines)} decided")


_ids = click.argument("ids", nargs=-1, type=int)
_all = click.option("--all", "every", is_flag=True, help="Every proposal in the queue.")
_org = click.option("--org", "orgs", multiple=True, help="Organisation slug (repeatable).")
_source = click.option("--source", "sources", multiple=True, help="With --all: by evidence.")


@assets_group.command("accept")
@_config_option
@_ids
@_all
@_org
@_source
@click.option("--criticality", type=click.Choice([str(c) for c in Criticality]))
@click.option("--tag", "tags", multiple=True, help="Tag to give (repeatable).")
@click.option("--note", help="Why (kept in the audit trail).")
def assets_accept(
    config_path: Path | None,
    ids: Sequence[int],
    every: bool,
    orgs: Sequence[str],
    sources: Sequence[str],
    criticality: str | None,
    tags: Sequence[str],
    note: str | None,
) -> None:
    """Accept proposals: new assets are scanned from the next run on; an accepted
    retirement proposal retires the asset. Exit 2 when one cannot be accepted (then none
    is)."""
    _decide(
        config_path, ids, every, orgs, sources,
        lambda session, chosen, visible, now: accept(
            session, chosen, visible=visible, actor=_actor(), now=now,
            criticality=criticality, tags=list(tags) or None, note=note,
        ),
    )  # fmt: skip


@assets_group.command("reject")
@_config_option
@_ids
@_all
@_org
@_source
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
def assets_reject(
    config_path: Path | None,
    ids: Sequence[int],
    every: bool,
    orgs: Sequence[str],
    sources: Sequence[str],
    reason: str,
) -> None:
    """Reject proposals: a rejected asset stays out even when discovery sees it again; a
    rejected retirement proposal keeps the asset."""
    _decide(
        config_path, ids, every, orgs, sources,
        lambda session, chosen, visible, now: reject(
            session, chosen, visible=visible, actor=_actor(), now=now, reason=reason
        ),
    )  # fmt: skip


@assets_group.command("retire")
@_config_option
@_ids
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
def assets_retire(config_path: Path | None, ids: Sequence[int], reason: str) -> None:
    """Retire assets no longer in use: not scanned any more, kept with their history.
    Assets declared in the configuration are retired by removing them there."""
    _decide(
        config_path, ids, False, (), (),
        lambda session, chosen, visible, now: retire(
            session, chosen, visible=visible, actor=_actor(), now=now, reason=reason
        ),
    )  # fmt: skip


@assets_group.command("set")
@_config_option
@click.argument("asset_id", type=int)
@click.option("--criticality", type=click.Choice([str(c) for c in Criticality]))
@click.option("--tag", "tags", multiple=True, help="Tags (repeatable; replaces the tags).")
@click.option("--note", "owner_note", help="The owner's note (empty text clears it).")
def assets_set(
    config_path: Path | None,
    asset_id: int,
    criticality: str | None,
    tags: Sequence[str],
    owner_note: str | None,
) -> None:
    """Set an asset's criticality, tags or owner's note (audited)."""

    def change(session: Any, chosen: list[int], visible: list[str], now: dt.datetime) -> list[Any]:
        asset = update(session, chosen[0], visible=visible, actor=_actor(), now=now,
                       criticality=criticality, tags=list(tags) if tags else None,
                       owner_note=owner_note)  # fmt: skip
        return [asset]

    _decide(config_path, [asset_id], False, (), (), change)


@assets_group.command("add")
@_config_option
@click.option("--org", "org", required=True, help="Organisation slug.")
@click.argument("kind", type=click.Choice([str(k) for k in AssetKind]))
@click.argument("value")
@click.option("--criticality", type=click.Choice([str(c) for c in Criticality]), default="medium")
@click.option("--tag", "tags", multiple=True, help="Tag (repeatable).")
@click.option("--note", "owner_note", help="The owner's note.")
def assets_add(
    config_path: Path | None,
    org: str,
    kind: str,
    value: str,
    criticality: str,
    tags: Sequence[str],
    owner_note: str | None,
) -> None:
    """Add an asset by hand (origin `added`); it must lie inside the declared scope."""
    config = _read(config_path, [org])

    def add_one(session: Any, chosen: list[int], visible: list[str], now: dt.datetime) -> list[Any]:
        sync_config(session, config, now=now)
        asset = add(session, config, organisation=org, kind=kind, value=value, visible=visible,
                    actor=_actor(), now=now, criticality=criticality, tags=tags,
                    owner_note=owner_note)  # fmt: skip
        return [asset]

    _decide(config_path, [0], False, (), (), add_one)


@assets_group.command("import")
@_config_option
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--org", "org", required=True, help="Organisation slug.")
@click.option("--dry-run", is_flag=True, help="Check every row and change nothing.")
def assets_import(config_path: Path | None, file: Path, org: str, dry_run: bool) -> None:
    """Import assets from a spreadsheet (XLSX or CSV) into the organisation's inventory.

    The first row names the columns, in Finnish, Swedish or English (Tyyppi/Typ/Kind,
    Kohde/Tillgång/Asset, Kriittisyys/Kritikalitet/Criticality, Tunnisteet/Taggar/Tags,
    Huomautus/Anteckning/Note) or by key (kind, value, criticality, tags, note); kind and
    asset are required. Kinds: domain, mail_domain, host, ip, network, url; criticality:
    low, medium (the default), high; tags separated by commas. Each row is checked like
    `assets add`: an asset outside the declared scope is refused. Problems name the file, row and
    column; with any problem nothing is imported (exit 2). Assets already active are left
    as they are. `--dry-run` runs every check and changes nothing.
    """
    from riskiturva.asset_import import import_assets

    config = _read(config_path, [org])
    sessions = open_store(config)
    now = dt.datetime.now(dt.UTC)
    result = import_assets(
        sessions, config, file, organisation=org, visible=[org], actor=_actor(), now=now,
        dry_run=dry_run,
    )  # fmt: skip
    for problem in result.problems:
        click.echo(f"error: {problem}", err=True)
    if result.problems:
        count = len(result.problems)
        click.echo(f"{count} problem{'s' * (count != 1)}: nothing imported", err=True)
        sys.exit(ExitCode.USAGE)
    verb = "would add" if dry_run else "added"
    for label in result.added:
        click.echo(f"{verb}: {org} {label}")
    click.echo(
        f"{len(result.added)} {verb}, {len(result.unchanged)} already in the inventory"
        + (" (dry run: nothing changed)" if dry_run else "")
    )


@assets_group.command("outside-scope")
@_config_option
@click.option("--org", "orgs", multiple=True, help="Organisation slug (repeatable).")
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table")
def assets_outside_scope(config_path: Path | None, orgs: Sequence[str], fmt: str) -> None:
    """Names and addresses discovery saw outside the declared scope, and where.

    None of them was resolved further, contacted or scanned. To have one scanned, the
    owner extends the organisation's `scope` (in writing, then in the configuration).
    """
    config = _read(config_path, orgs)
    sessions = open_store(config)
    visible = _visible(config, orgs)
    with sessions() as session:
        rows: list[dict[str, Any]] = [
            {"organisation": slug, "value": s.value, "kind": s.kind, "source": s.source,
             "via": s.via, "first_seen": s.first_seen.isoformat(),
             "last_seen": s.last_seen.isoformat(),
             "in_scope_of": [o.slug for o in s.in_scope_of],
             "in_another_scope": s.in_another_scope}
            for slug in visible
            for s in views.review_queue(
                session, visible, slug, scopes=_scopes(config)
            ).outside_scope
        ]  # fmt: skip
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table("organisation", "name or address", "seen by", "where", "in the scope of")
    for r in rows:
        owner = ", ".join(r["in_scope_of"])
        if not owner and r["in_another_scope"]:
            owner = "another organisation"
        table.add_row(r["organisation"], Text(r["value"]), r["source"], Text(r["via"]), owner)
    _cli()._console().print(table)
    click.echo(f"{len(rows)} sightings outside scope")


@assets_group.command("changes")
@_config_option
@click.option("--org", "orgs", multiple=True, help="Organisation slug (repeatable).")
@click.option("--days", default=30, show_default=True, help="How far back.")
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table")
def assets_changes(config_path: Path | None, orgs: Sequence[str], days: int, fmt: str) -> None:
    """What changed: assets proposed, accepted, gone; new open ports and certificates."""
    config = _read(config_path, orgs)
    sessions = open_store(config)
    now = dt.datetime.now(dt.UTC)
    since = now - dt.timedelta(days=days)
    visible = _visible(config, orgs)
    with sessions() as session:
        found = [
            (slug, e)
            for slug in visible
            for e in views.estate_changes(session, visible, slug, since=since, until=now)
        ]
    found.sort(key=lambda pair: (pair[1].at, pair[1].id), reverse=True)
    rows = [
        {"organisation": slug, "at": e.at.isoformat(), "kind": e.kind, "subject": e.subject,
         "actor": e.actor, "detail": dict(e.detail)}
        for slug, e in found
    ]  # fmt: skip
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table("when", "organisation", "change", "subject", "by")
    for r in rows:
        when = _cli()._local_datetime(r["at"], "en")
        table.add_row(
            when,
            str(r["organisation"]),
            str(r["kind"]),
            Text(str(r["subject"])),
            str(r["actor"] or ""),
        )
    _cli()._console().print(table)


@assets_group.command("export")
@_config_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File to write  [default: standard output]",
)
def assets_export(config_path: Path | None, out: Path | None) -> None:
    """Write the configuration back with every organisation's active inventory as its
    assets: discovered and added assets become declared ones (re-importing is idempotent)."""
    config = _read(config_path)
    sessions = open_store(config)
    with sessions.begin() as session:
        sync_config(session, config)
        visible = [o.slug for o in config.organisations]
        inventory: dict[str, list[Asset]] = {}
        for asset in list_assets(session, visible, states=[str(AssetState.ACTIVE)]):
            inventory.setdefault(asset.organisation.slug, []).append(asset)
        text = export_document(config, inventory)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)
