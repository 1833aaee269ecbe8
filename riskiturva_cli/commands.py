"""The `riskiturva` commands. Each command's docstring is its help text."""

from __future__ import annotations

import collections
import csv
import datetime as dt
import json
import secrets
import shutil
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from riskiturva import __version__, views
from riskiturva import _terminal as terminal
from riskiturva.checks import LANGUAGES, Registry, Severity, load_registry, markdown_table
from riskiturva.collector import CollectorLoadError, discover_collectors
from riskiturva.config import Config, ConfigError, default_config_path, load_config
from riskiturva.db import StoreUnavailable, open_store
from riskiturva.dberrors import StoreWriteError, store_failure_paragraph
from riskiturva.exit_codes import SUMMARIES, ExitCode, scan_exit_code, score_exit_code
from riskiturva.export import spreadsheet_cell, terminal_text
from riskiturva.history import take_snapshots
from riskiturva.i18n import translator
from riskiturva.intel.feeds import FeedError, Source
from riskiturva.intel.store import source_states
from riskiturva.intel.update import FeedFetchError, client_for, import_directory, update
from riskiturva.lab.cli import lab
from riskiturva.runner import Outcome, RunReport, build_context, run_scan

FORMATS = ("table", "json")

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Configuration file [default: $RISKITURVA_CONFIG, else config/riskiturva.toml].",
)
lang_option = click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    default="fi",
    show_default=True,
    help="Language of titles.",
)


def _console() -> Console:
    # Piped output keeps full-width tables rather than rich's 80-column guess.
    return terminal.console(
        highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160
    )


def read_config(path: Path | None) -> Config:
    """Load the configuration, or exit USAGE (2) naming the file, line, field and value."""
    try:
        return load_config(path or default_config_path())
    except ConfigError as exc:
        click.echo(exc.describe(), err=True)
        sys.exit(ExitCode.USAGE)
    except CollectorLoadError as exc:
        raise click.ClickException(str(exc)) from exc


def exit_status_help(*codes: ExitCode) -> str:
    """The `Exit status` line of a command's help, from the one table of codes."""
    listed = "; ".join(f"{int(code)} {SUMMARIES[code]}" for code in codes)
    return f"Exit status: {listed} (docs/cli.md)."


class _Commands(click.Group):
    """The root group: a database that cannot be opened or written is one paragraph, exit 1,
    never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StoreUnavailable as exc:
            raise click.ClickException(str(exc)) from exc
        except StoreWriteError as error:
            click.echo(error.paragraph(), err=True)
        except SQLAlchemyError as error:
            click.echo(store_failure_paragraph(error), err=True)
        sys.exit(ExitCode.FAILED)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="riskiturva")
def main() -> None:
    """Riskiturva: is our IT environment up to date and secure?

    Scans the public-facing assets of the organisations in the configuration (only within
    their declared scope), keeps findings with their lifecycle, and scores them.
    """
    terminal.protect_standard_streams()


main.add_command(lab)


@main.command()
def version() -> None:
    """Print the version."""
    click.echo(__version__)


@main.command()
@config_option
@click.option("--force", is_flag=True, help="Overwrite an existing configuration file.")
def init(config_path: Path | None, force: bool) -> None:
    """Write a starter configuration and create the database."""
    path = config_path or default_config_path()
    if path.exists() and not force:
        click.echo(f"{path} exists; keeping it (use --force to overwrite).")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        with resources.as_file(resources.files("riskiturva") / "starter.toml") as starter:
            shutil.copyfile(starter, path)
        click.echo(f"Wrote {path}. Declare your organisations' scope and assets in it.")
    config = read_config(path)
    open_store(config)
    click.echo(f"Database ready: {config.settings.shown_database_url}")


@main.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command(
    "check", epilog=exit_status_help(ExitCode.OK, ExitCode.FAILED, ExitCode.USAGE)
)
@click.argument("path", type=click.Path(path_type=Path), required=False)
@config_option
def config_check(path: Path | None, config_path: Path | None) -> None:
    """Validate a configuration file as a scan would use it, without scanning.

    Checks the types, every collector's options, the files the settings name (PEM CA
    certificates, DS/DNSKEY trust anchors), the database URL, and each organisation's
    scope (no public suffix, no network wider than the limit, no domain or network of two
    organisations unless declared in [[shared_scope]]). Every problem names the file, the
    line and the field; secrets are never shown. The database is not contacted.
    """
    config = read_config(path or config_path)
    assets = sum(len(o.assets) for o in config.organisations)
    shared = f", {len(config.shared_scope)} shared scopes" if config.shared_scope else ""
    click.echo(
        f"{config.source}: OK — {len(config.organisations)} organisations, "
        f"{len(config.partners)} partners, {assets} assets{shared}"
    )


@main.group("db")
def db_group() -> None:
    """Database maintenance."""


@db_group.command("upgrade")
@config_option
def db_upgrade(config_path: Path | None) -> None:
    """Create the database or migrate it to the current schema."""
    config = read_config(config_path)
    open_store(config)
    click.echo(f"Database at the current schema: {config.settings.shown_database_url}")


@db_group.command("prune")
@config_option
def db_prune(config_path: Path | None) -> None:
    """Delete scan runs, their target errors and handled fire times older than
    `settings.retention.run_history_days` (the scheduler does it weekly).

    Findings and their events are never deleted, nor a run that one of them refers to.
    """
    from riskiturva.retention import prune

    config = read_config(config_path)
    sessions = open_store(config)
    click.echo(prune(sessions, config.settings.retention, dt.datetime.now(dt.UTC)))


@db_group.command("vacuum")
@config_option
def db_vacuum(config_path: Path | None) -> None:
    """Compact an SQLite database file (VACUUM; the scheduler does it weekly).

    Needs free disk space about the size of the database; scans wait while it runs.
    """
    from riskiturva.retention import vacuum

    config = read_config(config_path)
    sessions = open_store(config)
    click.echo(vacuum(sessions.kw["bind"]))


@db_group.command("backup")
@config_option
@click.argument("destination", type=click.Path(path_type=Path, dir_okay=False))
def db_backup(config_path: Path | None, destination: Path) -> None:
    """Copy the SQLite database to DESTINATION while it is in use (online backup API).

    The copy is consistent even while scans write, checked with `PRAGMA integrity_check`,
    and readable by its owner only. PostgreSQL: use pg_dump (docs/operations.md).
    """
    from riskiturva.retention import backup_sqlite

    config = read_config(config_path)
    sessions = open_store(config)
    try:
        size = backup_sqlite(sessions.kw["bind"], destination)
    except (ValueError, FileExistsError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{destination}: {size // 1024} KiB, integrity ok")


@main.group("checks")
def checks_group() -> None:
    """The registry of checks."""


@checks_group.command("list")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("table", "json", "markdown")),
    default="table",
    show_default=True,
)
@lang_option
def checks_list(fmt: str, lang: str) -> None:
    """List every check with its id, category, severity, effort and default owner."""
    checks = list(load_registry().values())
    if fmt == "json":
        rows = [
            {
                "id": c.id,
                "category": c.category,
                "severity": c.severity,
                "effort": c.effort,
                "owner": c.owner,
                "title": dict(c.title),
                "guidance": dict(c.guidance),
                "impact": dict(c.impact),
                "references": list(c.references),
            }
            for c in checks
        ]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    elif fmt == "markdown":
        click.echo(markdown_table(load_registry()), nl=False)
    else:
        table = Table("id", "category", "severity", "effort", "owner", "title")
        for c in checks:
            table.add_row(c.id, c.category, c.severity, c.effort, c.owner, Text(c.title_in(lang)))
        _console().print(table)


@main.group("findings")
def findings_group() -> None:
    """Findings in the store."""


def _now() -> dt.datetime:
    """The current moment; tests give a fixed clock as `obj={"clock": ...}` to the command."""
    root = click.get_current_context().find_root()
    clock = root.obj.get("clock") if isinstance(root.obj, dict) else None
    return clock() if clock is not None else dt.datetime.now(dt.UTC)


def _findings(
    session: Session, visible: Sequence[str], statuses: Sequence[str] = ()
) -> list[views.FindingRow]:
    return views.findings(session, visible, registry=load_registry(), statuses=statuses)


def finding_record(finding: views.FindingRow, lang: str) -> dict[str, Any]:
    check = load_registry().get(finding.check_id)
    return {
        "organisation": finding.organisation,
        "fingerprint": finding.fingerprint,
        "check_id": finding.check_id,
        "title": check.title_in(lang) if check else finding.check_id,
        "category": finding.category,
        "severity": finding.severity,
        "status": finding.status,
        "subject": finding.subject,
        "asset": finding.asset,
        "first_seen": finding.first_seen.isoformat(),
        "last_seen": finding.last_seen.isoformat(),
        "resolved_at": finding.resolved_at.isoformat() if finding.resolved_at else None,
        "evidence": finding.evidence,
        "reproduce": finding.reproduce,
    }


@findings_group.command("list")
@config_option
@click.option("--org", "orgs", multiple=True, help="Organisation slug (repeatable).")
@click.option(
    "--status", "statuses", multiple=True, help="open, resolved, accepted, false_positive."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("table", "json", "csv")),
    default="table",
    show_default=True,
)
@lang_option
def findings_list(
    config_path: Path | None, orgs: Sequence[str], statuses: Sequence[str], fmt: str, lang: str
) -> None:
    """List findings (all organisations of the configuration, or those given with --org)."""
    config = read_config(config_path)
    _require_known_orgs(config, orgs)
    visible = list(orgs) or [o.slug for o in config.organisations]
    sessions = open_store(config)
    with sessions() as session:
        records = [finding_record(f, lang) for f in _findings(session, visible, statuses)]
    if fmt == "json":
        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
    elif fmt == "csv":
        columns = [
            "organisation",
            "check_id",
            "severity",
            "status",
            "subject",
            "first_seen",
            "last_seen",
            "title",
        ]
        writer = csv.DictWriter(
            sys.stdout, fieldnames=columns, extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows({k: spreadsheet_cell(v) for k, v in r.items()} for r in records)
    else:
        table = Table("organisation", "severity", "status", "check", "subject", "last seen")
        for r in records:
            table.add_row(
                r["organisation"],
                r["severity"],
                r["status"],
                Text(r["title"]),
                Text(r["subject"]),
                _local_datetime(r["last_seen"], lang),
            )
        _console().print(table)
        click.echo(f"{len(records)} findings")


def _local_date(iso_day: str, lang: str) -> str:
    """An ISO day from a JSON record, written as `lang` writes days (31.10.2026)."""
    return translator(lang, "dashboard").date(dt.date.fromisoformat(iso_day))


def _local_datetime(iso_moment: str, lang: str) -> str:
    """An ISO moment, in the schedule's Helsinki time, written as `lang` writes it."""
    moment = dt.datetime.fromisoformat(iso_moment).astimezone(ZoneInfo("Europe/Helsinki"))
    return translator(lang, "dashboard").datetime(moment)


def _require_known_orgs(config: Config, orgs: Sequence[str]) -> None:
    known = {o.slug for o in config.organisations}
    unknown = [o for o in orgs if o not in known]
    if unknown:
        raise click.BadParameter(
            f"unknown organisation(s): {', '.join(unknown)}", param_hint="--org"
        )


SEVERITY_NAMES = [str(s) for s in Severity if s is not Severity.INFO]


@main.command(
    epilog=exit_status_help(
        ExitCode.OK, ExitCode.FAILED, ExitCode.USAGE, ExitCode.THRESHOLD, ExitCode.INTERRUPTED
    )
)
@config_option
@click.option("--org", "orgs", multiple=True, help="Organisation slug (repeatable; default all).")
@click.option(
    "--collector",
    "collector_names",
    multiple=True,
    help="Collector name (repeatable; default all).",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITY_NAMES),
    default=None,
    help=f"Exit {int(ExitCode.THRESHOLD)} when an open finding at or above this severity exists.",
)
@click.option(
    "--no-alerts",
    is_flag=True,
    help="Leave the run's alerts in the outbox for the scheduler (`alerts send`).",
)
@lang_option
def scan(
    config_path: Path | None,
    orgs: Sequence[str],
    collector_names: Sequence[str],
    fmt: str,
    fail_on: str | None,
    no_alerts: bool,
    lang: str,
) -> None:
    """Scan the organisations' assets with the registered collectors and reconcile findings.

    The collectors run at the same time, each within the configured limits. On a terminal
    a progress bar per collector is shown, then a summary: per run its targets (ok +
    partial + failed + skipped), the findings new, still open and resolved, and the targets
    that failed or were skipped with their kind and message. `--format json` prints the
    runs with every error and every finding (docs/scan-output.schema.json). SIGTERM or
    Ctrl-C stops after the current targets; the run is recorded as interrupted and
    resolves nothing.

    Alerts the scan raises that are due now (urgent ones) are delivered before it ends,
    unless --no-alerts; the rest wait in the outbox for their digest (docs/alerts.md).
    """
    config = read_config(config_path)
    _require_known_orgs(config, orgs)
    try:
        installed = discover_collectors()
    except CollectorLoadError as exc:
        raise click.ClickException(str(exc)) from exc
    if not installed:
        raise click.ClickException(
            "no collectors are installed: install the riskiturva package with its collectors "
            "(pip install -e .) so the `riskiturva.collectors` entry points exist"
        )
    unknown = [c for c in collector_names if c not in installed]
    if unknown:
        raise click.BadParameter(
            f"unknown collector(s): {', '.join(unknown)} (installed: {', '.join(installed)})",
            param_hint="--collector",
        )
    collectors = [
        c for name, c in installed.items() if not collector_names or name in collector_names
    ]
    sessions = open_store(config)
    context = build_context(config, sessions=sessions)
    with _stop_on_sigterm(context.cancelled), _progress(fmt == "table") as bars:
        reports = run_scan(
            sessions,
            config,
            collectors,
            organisations=orgs or None,
            context=context,
            progress=bars,
        )
        if bars is not None:
            bars.label(reports)
    visible = list(orgs) or [o.slug for o in config.organisations]
    take_snapshots(
        sessions,
        config,
        dt.datetime.now(ZoneInfo(config.settings.schedules.timezone)).date(),
        organisations=visible,
    )
    if not no_alerts:
        _send_alerts_after_scan(sessions, config)
    with sessions() as session:
        findings = [finding_record(f, lang) for f in _findings(session, visible)]
    if fmt == "json":
        document = {
            "riskiturva_version": __version__,
            "generated_at": dt.datetime.now(dt.UTC).isoformat(),
            "runs": [run_record(r) for r in reports],
            "findings": findings,
        }
        click.echo(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        _print_run_summary(reports)
    for report in reports:
        if report.store_error is not None:
            click.echo(report.store_error.paragraph(), err=True)
    threshold_reached = fail_on is not None and any(
        f["status"] == "open" and Severity(f["severity"]).rank >= Severity(fail_on).rank
        for f in findings
    )
    code = scan_exit_code(reports, threshold_reached=threshold_reached)
    if code is ExitCode.FAILED and not any(r.checked for r in reports):
        click.echo("nothing was checked: every target failed or was skipped", err=True)
    sys.exit(code)


def _send_alerts_after_scan(sessions: Any, config: Config) -> None:
    """Deliver what the scan raised that is due now; said on stderr, stdout stays the scan's."""
    from riskiturva.alerts.sender import deliver_due

    report = deliver_due(sessions, config)
    if report.batched or report.sent or report.retrying or report.failed:
        click.echo(
            f"alerts: {report.sent} messages sent, {report.retrying} to retry later, "
            f"{report.failed} failed",
            err=True,
        )


def run_record(report: RunReport) -> dict[str, Any]:
    return {
        "id": report.run_id,
        "collector": report.collector,
        "status": str(report.status),
        "message": report.message,
        **report.as_dict(),
        "errors": [error.as_dict() for error in report.errors],
    }


@contextmanager
def _stop_on_sigterm(cancelled: threading.Event) -> Iterator[None]:
    """SIGTERM and Ctrl-C ask the runs to stop after their current targets."""

    def request_stop(signum: int, _frame: object) -> None:
        cancelled.set()
        click.echo("stopping after the current targets…", err=True)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Bars:
    """A progress bar per collector (called by the runner with done and total targets)."""

    def __init__(self, bars: Progress):
        self._bars = bars
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def __call__(self, collector: str, done: int, total: int) -> None:
        with self._lock:
            if collector not in self._tasks:
                self._tasks[collector] = self._bars.add_task(collector, total=total)
            self._bars.update(self._tasks[collector], completed=done, total=total)

    def label(self, reports: Sequence[RunReport]) -> None:
        """Name how each run ended beside its (full) bar."""
        for report in reports:
            task = self._tasks.get(report.collector)
            if task is not None:
                self._bars.update(task, description=f"{report.collector} ({report.status})")


@contextmanager
def _progress(wanted: bool) -> Iterator[_Bars | None]:
    """Progress bars on a terminal (stderr); nothing otherwise."""
    console = terminal.console(stderr=True)
    if not (wanted and console.is_terminal):
        yield None
        return
    columns = (
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bars:
        yield _Bars(bars)


@main.command(
    epilog=exit_status_help(ExitCode.OK, ExitCode.FAILED, ExitCode.USAGE, ExitCode.THRESHOLD)
)
@config_option
@click.option("--org", "orgs", multiple=True, help="Organisation slug (repeatable; default all).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--top", default=5, show_default=True, help="How many priorities to show.")
@click.option(
    "--target", type=click.Choice("ABCD"), default="B", show_default=True, help="Plan's goal."
)
@click.option(
    "--fail-below",
    type=click.Choice("ABCD"),
    default=None,
    help=f"Exit {int(ExitCode.THRESHOLD)} when an organisation's grade is below this one"
    f" ({int(ExitCode.FAILED)} when one was never checked).",
)
@lang_option
def score(
    config_path: Path | None,
    orgs: Sequence[str],
    fmt: str,
    top: int,
    target: str,
    fail_below: str | None,
    lang: str,
) -> None:
    """Grade, score, the answer, priorities, the explanation, the exceptions in force and
    what changed in the last 30 days, for each organisation (live, at this moment).

    The model is documented in docs/scoring.md.
    """
    from riskiturva.store import sync_config

    config = read_config(config_path)
    _require_known_orgs(config, orgs)
    slugs = list(orgs) or [o.slug for o in config.organisations]
    sessions = open_store(config)
    now = _now()
    registry = load_registry()
    with sessions.begin() as session:
        sync_config(session, config)
    with sessions() as session:
        overviews = [
            views.overview(session, slugs, slug, now=now, registry=registry) for slug in slugs
        ]
    if fmt == "json":
        documents = [
            o.to_json(registry=registry, language=lang, target=target, top=top) for o in overviews
        ]
        click.echo(json.dumps(documents, ensure_ascii=False, indent=2))
    else:
        for overview in overviews:
            _print_score(overview, registry, lang, target, top)
    grades = ((str(o.score.grade), o.live.checked) for o in overviews)
    sys.exit(score_exit_code(grades, fail_below=fail_below))


def _print_score(
    overview: views.Overview, registry: Registry, lang: str, target: str, top: int
) -> None:
    """One organisation's score as tables on the terminal."""
    console = _console()
    d = overview.document(registry=registry, language=lang, target=target, top=top)
    change = overview.change
    trend = (
        f", {change.delta:+.1f} since {_local_date(change.since.isoformat(), lang)}"
        if change.since is not None and change.delta is not None
        else ""
    )
    name = overview.organisation.name(lang)
    console.print(Text(f"{d.organisation} — {name}: {d.grade} {d.score:.1f}{trend}"))
    console.print(Text(d.answer))
    priorities_table = Table("action", "severity", "instances", "gain", "effort", "due")
    for p in d.priorities:
        due_day = _local_date(p.due.isoformat(), lang) if p.due else "—"
        due = f"{due_day} OVERDUE" if p.overdue else due_day
        row = (str(p.severity), str(p.instances), f"+{p.gain:.1f}", str(p.effort), due)
        priorities_table.add_row(Text(p.title), *row)
    console.print(priorities_table)
    plan = d.plan
    goal = f"To reach {plan.target}: fix {len(plan.check_ids)} action(s)"
    after = f"{plan.grade_after} {plan.score_after:.1f}"
    console.print(Text(f"{goal}, effort {plan.effort_units} → {after}"))
    why = Table("why (points lost)", "points", "of which caps", title=f"100 → {d.score:.1f}")
    for line in d.explanation:
        caps = f"−{line.cap_points:.1f}" if line.cap_points else ""
        why.add_row(Text(line.title), f"−{line.points_lost:.1f}", caps)
    for cap in d.caps:
        why.add_row(Text(f"cap{'' if cap.binding else ' (not binding)'}: {cap.reason}"), "", "")
    console.print(why)
    register = overview.exceptions
    if register.entries:
        exceptions = Table("accepted / false positive", "severity", "subject", "by", "until")
        for e in register.entries:
            until = _local_datetime(e.until.isoformat(), lang) if e.until else "—"
            if e.expiring:
                until += f" (ENDS IN {e.days_left} DAYS)"
            title = registry[e.check_id].title_in(lang) if e.check_id in registry else e.check_id
            exceptions.add_row(
                Text(title),
                str(e.severity),
                Text(terminal_text(e.subject, 80)),
                Text(terminal_text(e.decided_by or "", 80)),
                until,
            )
        console.print(exceptions)
    changes = overview.changes
    counts = ", ".join(f"{len(changes.of(kind))} {kind}" for kind in views.ChangeKind)
    console.print(Text(f"last 30 days: {counts}"))


@main.group("intel")
def intel_group() -> None:
    """Vulnerability intelligence: CISA KEV, NVD, FIRST EPSS and endoflife.date, stored locally.

    Scans judge identified software only with data no older than
    `settings.intel.max_age_days`; older data is refused and the scan says so.
    See docs/vulnerabilities.md.
    """


SOURCE_NAMES = tuple(str(s) for s in Source)


@intel_group.command("update")
@config_option
@click.option(
    "--source",
    "source_names",
    multiple=True,
    type=click.Choice(SOURCE_NAMES),
    help="Only this source (repeatable; default all).",
)
def intel_update(config_path: Path | None, source_names: Sequence[str]) -> None:
    """Download the feeds (through the configured resolver) and store them with their dates.

    Each source is replaced in one transaction once it has been read completely, so a
    failed download keeps the previous data. NVD is paged through the CVE API 2.0; after
    the first download only CVEs modified since then are fetched. Exit status 1 when a
    source could not be updated.
    """
    config = read_config(config_path)
    sessions = open_store(config)
    sources = [Source(n) for n in source_names] or list(Source)
    _update_intel(sessions, config, sources)


def _update_intel(sessions: Any, config: Config, sources: Sequence[Source]) -> None:
    console = _console()
    try:
        results = update(
            sessions,
            config.settings,
            client_for(config.settings),
            now=dt.datetime.now(dt.UTC),
            sources=sources,
            progress=lambda message: console.print(Text(message), style="dim"),
        )
    except (FeedError, FeedFetchError, OSError) as exc:
        raise click.ClickException(f"vulnerability data not updated: {exc}") from exc
    for result in results:
        console.print(
            Text(f"{result.source.label}: {result.records} records, data as of "
                 f"{result.data_as_of:%Y-%m-%d %H:%M} UTC")
        )  # fmt: skip


@intel_group.command("import")
@config_option
@click.argument("directory", type=click.Path(path_type=Path, exists=True, file_okay=False))
def intel_import(config_path: Path | None, directory: Path) -> None:
    """Import feed files from DIRECTORY (for sites without internet access).

    Recognised files: `known_exploited_vulnerabilities.json` (CISA), `nvdcve-2.0-*.json[.gz]`
    or `nvd/*.json` (NVD 2.0 feeds or saved CVE API pages; together they replace the NVD
    data), `epss_scores-YYYY-MM-DD.csv.gz` (FIRST), `endoflife/<product>.json`
    (endoflife.date API v1). The files' own dates say how old the data is.
    """
    config = read_config(config_path)
    sessions = open_store(config)
    try:
        results = import_directory(sessions, directory, now=dt.datetime.now(dt.UTC))
    except (FeedError, FeedFetchError, OSError) as exc:
        raise click.ClickException(f"vulnerability data not imported: {exc}") from exc
    for result in results:
        click.echo(
            f"{result.source.label}: {result.records} records, data as of "
            f"{result.data_as_of:%Y-%m-%d %H:%M} UTC"
        )


@intel_group.command("status")
@config_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def intel_status(config_path: Path | None, fmt: str) -> None:
    """How old each source is, and whether scans may use it.

    Exit status 1 when a source is missing or older than `settings.intel.max_age_days`.
    """
    config = read_config(config_path)
    sessions = open_store(config)
    now = dt.datetime.now(dt.UTC)
    limit = config.settings.intel.max_age_days
    with sessions() as session:
        states = source_states(session)
    rows = []
    for source in Source:
        state = states.get(source)
        age = state.age_days(now) if state else None
        rows.append(
            {
                "source": str(source),
                "title": source.label,
                "data_as_of": state.data_as_of.isoformat() if state else None,
                "age_days": round(age, 1) if age is not None else None,
                "records": state.records if state else 0,
                "updated_at": state.updated_at.isoformat() if state else None,
                "origin": state.origin if state else None,
                "usable": age is not None and age <= limit,
            }
        )
    if fmt == "json":
        click.echo(json.dumps({"max_age_days": limit, "sources": rows}, indent=2))
    else:
        table = Table("source", "data as of", "age (days)", "records", "usable")
        for row in rows:
            table.add_row(
                str(row["title"]),
                str(row["data_as_of"] or "missing"),
                "" if row["age_days"] is None else f"{row['age_days']:g}",
                str(row["records"]),
                "yes" if row["usable"] else f"no (limit {limit} days)",
            )
        _console().print(table)
    if not all(row["usable"] for row in rows):
        sys.exit(ExitCode.FAILED)


@main.command("scheduler")
@config_option
def scheduler_command(config_path: Path | None) -> None:
    """Run the scan schedule in the foreground (no dashboard); SIGTERM stops it gracefully.

    Schedules come from `[settings.schedules]`; jobs are kept in the database, so a restart
    with a changed schedule replaces them without duplicates.
    """
    from riskiturva import scheduler

    path = config_path or default_config_path()
    config = read_config(path)
    open_store(config)
    _log_to_stderr()
    schedule = scheduler.Schedule(config, path)
    stop_requested = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop_requested.set())
    for spec in schedule.specs:
        click.echo(f"{spec.id}: {spec.schedule}")
    schedule.start()
    stop_requested.wait()
    click.echo("stopping: running scans finish their current targets…", err=True)
    schedule.stop()


def _log_to_stderr() -> None:
    """Log lines of long-running commands (the scheduler's decisions, skipped runs) on
    standard error, one line each; tracebacks only at debug level."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for noisy in ("alembic", "apscheduler", "waitress"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@main.command("report")
@config_option
@click.option("--org", help="Organisation slug: its monthly report.")
@click.option("--partner", help="Partner slug: the portfolio report of its organisations.")
@click.option("--month", help="Month as YYYY-MM  [default: the previous month]")
@click.option("--lang", type=click.Choice(LANGUAGES), default="fi", show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["pdf", "html"]), default="pdf", show_default=True
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File to write  [default: riskiturva-<org>-<month>-<lang>.<format> here]",
)
def report_command(
    config_path: Path | None,
    org: str | None,
    partner: str | None,
    month: str | None,
    lang: str,
    fmt: str,
    out: Path | None,
) -> None:
    """Render the monthly management report of an organisation, or a partner's portfolio.

    The monthly job (`[settings.reports]`, see docs/reports.md) also archives and e-mails
    the reports; this command only writes the file.
    """
    from riskiturva import reports  # loads Matplotlib and WeasyPrint: only when asked
    from riskiturva.store import NotVisible

    if (org is None) == (partner is None):
        raise click.UsageError("give exactly one of --org and --partner")
    now = dt.datetime.now(dt.UTC)
    try:
        period = reports.Month.parse(month) if month else reports.previous_month(now)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--month") from exc
    config = read_config(config_path)
    partners = {p.slug: p.name for p in config.partners}
    if org is not None:
        _require_known_orgs(config, [org])
    elif partner not in partners:
        raise click.BadParameter(
            f"no partner {partner!r} in the configuration", param_hint="--partner"
        )
    options = {
        "visible": [o.slug for o in config.organisations],
        "now": now,
        "language": lang,
        "fmt": fmt,
    }
    sessions = open_store(config)
    with sessions() as session:
        try:
            if org is not None:
                rendered = reports.render_organisation(
                    session, org, period, config=config, **options
                )
            else:
                assert partner is not None
                rendered = reports.render_portfolio(
                    session, partner, period, partner_name=partners[partner], **options
                )
        except NotVisible as exc:
            raise click.ClickException(
                f"{exc.args[0]}: not in the database yet, scan first"
            ) from exc
    path = out or Path(rendered.filename)
    path.write_bytes(rendered.content)
    click.echo(f"{path} ({len(rendered.content) // 1024} KiB): {rendered.subject}")


@main.group("alerts")
def alerts_group() -> None:
    """Alerts between the monthly reports: what was raised, where it went (docs/alerts.md)."""


@alerts_group.command("list")
@config_option
@click.option("--org", "orgs", multiple=True, help="Organisation slug (repeatable; default all).")
@click.option("--days", default=7, show_default=True, help="Alerts of the last DAYS days.")
@click.option("--limit", default=100, show_default=True, help="At most this many rows.")
@click.option(
    "--outbox", is_flag=True, help="The outbox messages (destination, status, attempts) instead."
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@lang_option
def alerts_list(
    config_path: Path | None,
    orgs: Sequence[str],
    days: int,
    limit: int,
    outbox: bool,
    fmt: str,
    lang: str,
) -> None:
    """List recent alerts and where each went, or the outbox with --outbox.

    With --org, the outbox lists only the messages all about those organisations.
    """
    config = read_config(config_path)
    _require_known_orgs(config, orgs)
    visible = list(orgs) or [o.slug for o in config.organisations]
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    sessions = open_store(config)
    with sessions() as session:
        if outbox:
            messages = views.outbox(session, visible, tests=not orgs, limit=limit)
            _print_outbox(messages, fmt)
            return
        rows = views.alerts(session, visible, config, language=lang, since=since, limit=limit)
    if fmt == "json":
        records = [
            {
                "id": r.uid,
                "created_at": r.created_at.isoformat(),
                "organisation": r.organisation.slug,
                "rule": r.rule,
                "severity": r.severity,
                "urgency": r.urgency,
                "title": r.title,
                "subject": r.subject,
                "url": r.url,
                "repeats": r.repeats,
                "deliveries": {d.destination: d.state for d in r.deliveries},
            }
            for r in rows
        ]
        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
        return
    table = Table("when", "organisation", "severity", "alert", "subject", "deliveries")
    for r in rows:
        states = collections.Counter(d.state for d in r.deliveries)
        table.add_row(
            _local_datetime(r.created_at.isoformat(), lang),
            r.organisation.slug,
            r.severity,
            Text(r.title),
            Text(r.subject),
            ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "none",
        )
    _console().print(table)
    click.echo(f"{len(rows)} alerts")


def _print_outbox(messages: Sequence[views.MessageEntry], fmt: str) -> None:
    if fmt == "json":
        records = [
            {
                "id": m.id,
                "key": m.key,
                "destination": m.destination,
                "kind": m.kind,
                "status": m.status,
                "attempts": m.attempts,
                "alerts": m.alerts,
                "organisations": list(m.organisations),
                "created_at": m.created_at.isoformat(),
                "next_attempt_at": m.next_attempt_at.isoformat(),
                "sent_at": m.sent_at.isoformat() if m.sent_at else None,
                "last_error": m.last_error,
            }
            for m in messages
        ]
        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
        return
    table = Table("id", "destination", "kind", "status", "attempts", "alerts", "last error")
    for m in messages:
        table.add_row(
            str(m.id), m.destination, m.kind, m.status, str(m.attempts), str(m.alerts),
            Text(m.last_error or ""),
        )  # fmt: skip
    _console().print(table)
    click.echo(f"{len(messages)} messages")


@alerts_group.command("send")
@config_option
def alerts_send(config_path: Path | None) -> None:
    """Deliver the alerts that are due now (the scheduler does this every few minutes).

    Exit status: 0 when nothing failed for good in this pass, 1 otherwise.
    """
    from riskiturva.alerts.sender import deliver_due

    config = read_config(config_path)
    report = deliver_due(open_store(config), config)
    click.echo(
        f"{report.batched} new messages; {report.sent} sent, {report.retrying} to retry later, "
        f"{report.failed} failed, {report.cancelled} cancelled"
    )
    if report.failed:
        sys.exit(ExitCode.FAILED)


@alerts_group.command("test")
@config_option
@click.argument("destination")
@lang_option
def alerts_test(config_path: Path | None, destination: str, lang: str) -> None:
    """Send a test message to DESTINATION: a channel name or an e-mail address.

    It goes through the outbox like any alert (and stays in its history). Exit status 0
    when the receiver took it, 1 otherwise (the reason is printed).
    """
    from riskiturva.alerts.sender import send_test
    from riskiturva.alerts.settings import Contact

    config = read_config(config_path)
    if "@" in destination:
        try:
            key = f"email:{Contact(email=destination).email}"
        except ValueError as exc:
            raise click.BadParameter("not an e-mail address", param_hint="DESTINATION") from exc
    elif config.settings.alerts.channel(destination) is not None:
        key = f"channel:{destination}"
    else:
        names = ", ".join(c.name for c in config.settings.alerts.channels) or "none configured"
        raise click.BadParameter(
            f"no channel {destination!r} (channels: {names})", param_hint="DESTINATION"
        )
    outcome, error = send_test(open_store(config), config, key, lang)
    if outcome == "sent":
        click.echo(f"Sent a test message to {destination}.")
        return
    click.echo(f"Could not send to {destination}: {error}", err=True)
    sys.exit(ExitCode.FAILED)


@alerts_group.command("retry")
@config_option
@click.argument("message_ids", nargs=-1, type=int)
@click.option("--failed", "all_failed", is_flag=True, help="Every message that failed for good.")
def alerts_retry(config_path: Path | None, message_ids: Sequence[int], all_failed: bool) -> None:
    """Queue failed outbox messages again (by id, see `alerts list --outbox`, or --failed)
    with a fresh set of attempts, and deliver them now."""
    from riskiturva.alerts.sender import deliver_due, requeue

    if not message_ids and not all_failed:
        raise click.UsageError("give message ids or --failed")
    config = read_config(config_path)
    sessions = open_store(config)
    with sessions.begin() as session:
        queued = requeue(
            session, dt.datetime.now(dt.UTC), message_ids=message_ids, failed=all_failed
        )
    click.echo(f"{len(queued)} messages queued again: {', '.join(map(str, queued)) or '-'}")
    report = deliver_due(sessions, config)
    click.echo(f"{report.sent} sent, {report.retrying} to retry later, {report.failed} failed")
    if report.failed:
        sys.exit(ExitCode.FAILED)


@main.group("users")
def users_group() -> None:
    """Dashboard accounts: partner administrators, organisation staff, management viewers."""


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _account_command(config_path: Path | None, action: Any) -> Any:
    """Run `action(session, now, actor)` in one transaction; account errors exit 2."""
    import getpass

    from riskiturva.auth import AccountError

    config = read_config(config_path)
    sessions = open_store(config)
    try:
        with sessions.begin() as session:
            return action(session, dt.datetime.now(dt.UTC), f"cli:{getpass.getuser()}")
    except AccountError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(ExitCode.USAGE)


@users_group.command("add")
@config_option
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(["partner_admin", "org_staff", "viewer"]),
    required=True,
    help="partner_admin: all organisations or those given; org_staff: one organisation, may "
    "accept risks; viewer: one organisation, overview and scoring only.",
)
@click.option("--org", "orgs", multiple=True, help="Organisation slug (repeatable).")
@click.option("--name", "display_name", default="", help="Name shown in the dashboard.")
@click.option("--lang", type=click.Choice(LANGUAGES), default="fi", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_add(
    config_path: Path | None,
    username: str,
    role: str,
    orgs: Sequence[str],
    display_name: str,
    lang: str,
    password_stdin: bool,
) -> None:
    """Add a dashboard account (the password is hashed with Argon2id)."""
    from riskiturva.auth import create_user
    from riskiturva.store import sync_config

    config = read_config(config_path)
    password = _password(password_stdin)

    def add(session: Any, now: dt.datetime, actor: str) -> None:
        sync_config(session, config)
        create_user(
            session,
            username=username,
            password=password,
            role=role,
            organisations=orgs,
            display_name=display_name,
            language=lang,
            now=now,
            actor=actor,
        )

    _account_command(config_path, add)
    click.echo(f"Added {username} ({role}).")


@users_group.command("list")
@config_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def users_list(config_path: Path | None, fmt: str) -> None:
    """List dashboard accounts."""
    from riskiturva.auth import list_users, sign_in_method

    def rows(session: Any, now: dt.datetime, actor: str) -> list[dict[str, Any]]:
        return [
            {
                "username": u.username,
                "name": u.display_name,
                "role": u.role,
                "organisations": u.organisations or ["*"],
                "disabled": u.disabled,
                "sign_in": sign_in_method(u),
                "last_login": u.last_login_at.isoformat() if u.last_login_at else None,
            }
            for u in list_users(session)
        ]

    records = _account_command(config_path, rows)
    if fmt == "json":
        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
        return
    table = Table("user", "name", "role", "organisations", "disabled", "sign-in", "last sign-in")
    for r in records:
        table.add_row(
            r["username"],
            Text(r["name"]),
            r["role"],
            ", ".join(r["organisations"]),
            "yes" if r["disabled"] else "",
            r["sign_in"],
            (r["last_login"] or "")[:16],
        )
    _console().print(table)


@users_group.command("disable")
@config_option
@click.argument("username")
def users_disable(config_path: Path | None, username: str) -> None:
    """Disable an account and end its sessions (`set-password` enables it again)."""
    from riskiturva.auth import disable_user

    _account_command(
        config_path, lambda s, now, actor: disable_user(s, username, now=now, actor=actor)
    )
    click.echo(f"Disabled {username}.")


@users_group.command("sign-out")
@config_option
@click.argument("usernames", nargs=-1)
@click.option("--all", "everyone", is_flag=True, help="Every account (e.g. after a leak).")
def users_sign_out(config_path: Path | None, usernames: Sequence[str], everyone: bool) -> None:
    """End every dashboard session of the accounts at once (sign out everywhere)."""
    from riskiturva.auth import end_sessions, list_users

    if everyone == bool(usernames):
        raise click.UsageError("name the accounts, or give --all")

    def sign_out(session: Any, now: dt.datetime, actor: str) -> list[tuple[str, int]]:
        names = [u.username for u in list_users(session)] if everyone else usernames
        return [(n, end_sessions(session, n, now=now, actor=actor)) for n in names]

    for username, ended in _account_command(config_path, sign_out):
        click.echo(f"{username}: {ended} session(s) ended.")


@users_group.command("set-password")
@config_option
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_set_password(config_path: Path | None, username: str, password_stdin: bool) -> None:
    """Set a new password (enabling a disabled account) and end the account's sessions."""
    from riskiturva.auth import set_password

    password = _password(password_stdin)
    _account_command(
        config_path, lambda s, now, actor: set_password(s, username, password, now=now, actor=actor)
    )
    click.echo(f"Password set for {username}.")


@users_group.command("totp-enable")
@config_option
@click.argument("username")
def users_totp_enable(config_path: Path | None, username: str) -> None:
    """Require a one-time code (TOTP) at the account's sign-in: prints the secret for an
    authenticator app, then asks for a code from the app to prove it was added."""
    from riskiturva.auth import enable_totp, new_totp_secret, totp_uri

    config = read_config(config_path)
    secret = new_totp_secret()
    issuer = config.settings.dashboard.totp_issuer
    click.echo("Add this account to an authenticator app (or scan the URI as a QR code):")
    click.echo(f"  secret: {secret}")
    click.echo(f"  URI:    {totp_uri(secret, username.strip().lower(), issuer)}")
    code = click.prompt("Code from the app")
    _account_command(
        config_path,
        lambda s, now, actor: enable_totp(s, username, secret, code, now=now, actor=actor),
    )
    click.echo(f"Second factor enabled for {username}; its sessions were ended.")


@users_group.command("totp-disable")
@config_option
@click.argument("username")
def users_totp_disable(config_path: Path | None, username: str) -> None:
    """Sign in with the password alone again (a lost phone: `totp-enable` anew after)."""
    from riskiturva.auth import disable_totp

    _account_command(
        config_path, lambda s, now, actor: disable_totp(s, username, now=now, actor=actor)
    )
    click.echo(f"Second factor removed from {username}.")


@main.group("tokens")
def tokens_group() -> None:
    """Personal API tokens (docs/api.md): each acts as its user, narrowed to a scope and
    organisations, until it expires or is revoked."""


@tokens_group.command("create")
@config_option
@click.argument("username")
@click.option("--name", "label", required=True, help="What the token is for (shown in lists).")
@click.option(
    "--scope",
    type=click.Choice(["read", "decide"]),
    default="read",
    show_default=True,
    help="read: reads only; decide: also accept risks and mark false positives (staff).",
)
@click.option(
    "--org", "orgs", multiple=True, help="Only this organisation of the user's (repeatable)."
)
@click.option("--days", type=int, default=90, show_default=True, help="Expires after (1–366).")
def tokens_create(
    config_path: Path | None,
    username: str,
    label: str,
    scope: str,
    orgs: Sequence[str],
    days: int,
) -> None:
    """Create a token for USERNAME and print it once (only its hash is kept)."""
    from riskiturva.api_tokens import create_token

    created = _account_command(
        config_path,
        lambda s, now, actor: create_token(
            s,
            username,
            name=label,
            scope=scope,
            organisations=orgs,
            days=days,
            now=now,
            actor=actor,
        ),
    )
    token = created.token
    click.echo(
        f"Token {token.id} for {token.username} ({token.scope}, until "
        f"{token.expires_at.date().isoformat()}); shown this once:",
        err=True,
    )
    click.echo(created.secret)


@tokens_group.command("list")
@config_option
@click.argument("username", required=False)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def tokens_list(config_path: Path | None, username: str | None, fmt: str) -> None:
    """List the tokens of USERNAME (of everyone without it); never their secrets."""
    from riskiturva._json import plain
    from riskiturva.api_tokens import list_tokens

    now = dt.datetime.now(dt.UTC)
    tokens = _account_command(config_path, lambda s, _now, _actor: list_tokens(s, username))
    if fmt == "json":
        records = [plain(t) | {"live": t.live(now)} for t in tokens]
        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
        return
    table = Table("id", "user", "name", "token", "scope", "organisations", "expires", "last used")
    for t in tokens:
        table.add_row(
            str(t.id),
            t.username,
            Text(t.name),
            t.prefix + "…",
            t.scope,
            ", ".join(t.organisations) or "*",
            "revoked" if t.revoked_at else t.expires_at.date().isoformat(),
            t.last_used_at.isoformat()[:16] if t.last_used_at else "",
        )
    _console().print(table)


@tokens_group.command("revoke")
@config_option
@click.argument("token_ids", nargs=-1, type=int, required=True)
def tokens_revoke(config_path: Path | None, token_ids: Sequence[int]) -> None:
    """Revoke tokens by id: they stop working at once."""
    from riskiturva.api_tokens import revoke_token

    def revoke(session: Any, now: dt.datetime, actor: str) -> None:
        for token_id in token_ids:
            revoke_token(session, token_id, now=now, actor=actor)

    _account_command(config_path, revoke)
    click.echo(f"Revoked {len(token_ids)} token(s).")


host_option = click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to serve on."
)
port_option = click.option("--port", default=8050, show_default=True, help="Port to serve on.")


@main.command()
@config_option
@host_option
@port_option
@click.option("--no-scheduler", is_flag=True, help="Serve the dashboard only.")
def serve(config_path: Path | None, host: str, port: int, no_scheduler: bool) -> None:
    """Run the scheduler and the dashboard in one process (the embedded default).

    The dashboard needs an account: `riskiturva users add`. SIGTERM or Ctrl-C stops both;
    running scans finish their current targets and are recorded.
    """
    path = config_path or default_config_path()
    _serve(path, read_config(path), host, port, with_scheduler=not no_scheduler)


def _serve(path: Path, config: Config, host: str, port: int, *, with_scheduler: bool) -> None:
    import dashboard
    from riskiturva import scheduler

    sessions = open_store(config)
    _log_to_stderr()
    running = scheduler.Schedule(config, path) if with_scheduler else None
    server = dashboard.make_server(dashboard.create_app(config, sessions), host=host, port=port)

    def request_stop(_signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, request_stop)
    if running is not None:
        running.start()
    click.echo(f"Dashboard at http://{host}:{server.effective_port}/ (Ctrl-C stops)")
    try:
        server.run()
    except (KeyboardInterrupt, SystemExit):
        click.echo("stopping…", err=True)
    finally:
        server.close()
        if running is not None:
            running.stop()


@main.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=Path("lab-state"),
    show_default=True,
    help="Where the lab keeps its servers, configuration and database.",
)
@host_option
@port_option
def demo(directory: Path, host: str, port: int) -> None:
    """Start the lab, scan it, run discovery, create a demo partner administrator, and serve
    the dashboard.

    Everything stays on loopback: the lab's fictitious municipalities under `.test` are
    real servers on 127.x addresses, and every name is resolved through the lab's own name
    server. Ctrl-C stops the dashboard and the lab.
    """
    from riskiturva.auth import AccountError, create_user, set_password
    from riskiturva.lab.estate import LabError, down, up

    try:
        state = up(directory)
    except LabError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        path = Path(state.config_path)
        config = read_config(path)
        sessions = open_store(config)
        # The lab serves its own vulnerability feeds on loopback.
        _update_intel(sessions, config, Source.all())
        context = build_context(config, sessions=sessions)
        collectors = list(discover_collectors().values())
        with _stop_on_sigterm(context.cancelled), _progress(True) as bars:
            reports = run_scan(sessions, config, collectors, context=context, progress=bars)
            if bars is not None:
                bars.label(reports)
        _print_run_summary(reports)
        from riskiturva.discovery import run_discovery

        found = run_discovery(sessions, config, context=context)
        proposed = sum(c.proposed for c in found.organisations.values())
        click.echo(f"Discovery: {proposed} proposals wait in `riskiturva assets proposals`")
        today = dt.datetime.now(ZoneInfo(config.settings.schedules.timezone)).date()
        take_snapshots(sessions, config, today)
        password = secrets.token_urlsafe(12)
        now = dt.datetime.now(dt.UTC)
        with sessions.begin() as session:
            try:
                create_user(
                    session, username="demo", password=password, role="partner_admin",
                    display_name="Demo (Kuntaverkko Oy)", now=now, actor="demo",
                )  # fmt: skip
            except AccountError:
                set_password(session, "demo", password, now=now, actor="demo")
        click.echo(f"Demo partner administrator: user `demo`, password `{password}`")
        _serve(path, config, host, port, with_scheduler=True)
    finally:
        down(directory)
        click.echo("lab stopped")


# The summary names this many failed, skipped or partial targets; JSON output names all.
ERRORS_SHOWN = 10
_OUTCOME_ORDER = {Outcome.FAILED: 0, Outcome.PARTIAL: 1, Outcome.SKIPPED: 2}


def _print_run_summary(reports: Sequence[RunReport]) -> None:
    """Per run: status, targets (ok + partial + failed + skipped), findings, errors by kind;
    then the targets that were not checked completely, most serious first, bounded."""
    table = Table(
        "run",
        "collector",
        "status",
        "targets",
        "ok",
        "partial",
        "failed",
        "skipped",
        "new",
        "still open",
        "resolved",
        "reopened",
        "errors by kind",
        "time",
    )
    for r in reports:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(r.errors_by_kind.items())) or "—"
        table.add_row(
            str(r.run_id),
            r.collector,
            str(r.status),
            *(str(n) for n in (r.targets, r.ok, r.partial, r.failed, r.skipped)),
            *(str(n) for n in (r.counts.opened, r.counts.seen, r.counts.resolved)),
            str(r.counts.reopened),
            kinds,
            f"{r.duration_s:.1f} s",
        )
    console = _console()
    console.print(table)
    for r in reports:
        if r.message:
            console.print(Text(f"{r.collector}: {terminal_text(r.message, 300)}"))
    errors = sorted(
        ((r.collector, e) for r in reports for e in r.errors),
        key=lambda pair: _OUTCOME_ORDER[pair[1].outcome],
    )
    if not errors:
        return
    console.print(Text(f"Targets not checked completely ({len(errors)}):"))
    for collector, error in errors[:ERRORS_SHOWN]:
        line = (
            f"  {collector} {error.organisation} {terminal_text(error.subject, 80)}: "
            f"{error.outcome}, {error.kind}: {terminal_text(error.message, 160)}"
        )
        console.print(Text(line))
    if len(errors) > ERRORS_SHOWN:
        more = len(errors) - ERRORS_SHOWN
        console.print(Text(f"  … and {more} more (riskiturva scan --format json lists all)"))


# The inventory's and the spreadsheets' commands live in their own modules; they use the
# helpers above.
from riskiturva_cli.assets import assets_group, discover_command, sync_command  # noqa: E402
from riskiturva_cli.spreadsheets import export_command  # noqa: E402

for _command in (sync_command, discover_command, assets_group, export_command):
    main.add_command(_command)
