"""`riskiturva lab up | down | status`: the fictitious estate on loopback."""

from __future__ import annotations

from pathlib import Path

import click

from riskiturva.lab.estate import DEFAULT_DIRECTORY, LabError, down, read_state, running, up
from riskiturva.lab.manifest import MAX_MUNICIPALITIES, load_manifest

_DIR_OPTION = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DIRECTORY,
    show_default=True,
    help="Where the lab keeps its state, keys, zones and logs.",
)


@click.group()
def lab() -> None:
    """The lab: fictitious municipalities under .test, served by real servers on loopback."""


@lab.command("up")
@_DIR_OPTION
@click.option("--dns-port", default=53, show_default=True, help="Port of the lab name server.")
@click.option(
    "--latency-ms",
    default=0,
    show_default=True,
    type=click.IntRange(0, 2000),
    help="Round-trip time a delay proxy adds in front of DNS, web and mail (e.g. 30).",
)
@click.option(
    "--municipalities",
    type=click.IntRange(1, MAX_MUNICIPALITIES),
    help="Serve this many municipalities: the lab's and clones of them (own domain, own /24,"
    " every host and planted weakness), a partner's estate for benchmarks.",
)
def up_command(directory: Path, dns_port: int, latency_ms: int, municipalities: int | None) -> None:
    """Start the lab (or keep the running one). The last line printed is the config path,

    so `riskiturva scan --config "$(riskiturva lab up | tail -1)"` scans the estate.
    """
    try:
        manifest = load_manifest(municipalities=municipalities)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--municipalities") from exc
    try:
        state = up(directory, dns_port=dns_port, latency_ms=latency_ms, manifest=manifest)
    except LabError as exc:
        raise click.ClickException(str(exc)) from exc
    planted, clean = len(manifest.planted()), len(manifest.clean())
    click.echo(
        f"lab running since {state.started_at} (started in {state.startup_seconds} s): "
        f"{len(state.processes)} processes, {len(state.endpoints)} endpoints, "
        f"{planted} planted weaknesses, {clean} clean endpoints",
        err=True,
    )
    click.echo(f"name server {', '.join(state.dns_servers)} port {state.dns_port}", err=True)
    if state.latency_ms:
        click.echo(f"delay proxy adds {state.latency_ms} ms per round trip", err=True)
    click.echo(state.config_path)


@lab.command("down")
@_DIR_OPTION
def down_command(directory: Path) -> None:
    """Stop exactly the processes `lab up` started."""
    stopped = down(directory)
    click.echo(f"stopped {', '.join(stopped)}" if stopped else "the lab was not running")


@lab.command("status")
@_DIR_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the state file.")
def status_command(directory: Path, as_json: bool) -> None:
    """Tell what runs. Exit code 0: all running; 1: partly or not at all."""
    state = read_state(directory.resolve())
    if state is None:
        click.echo("the lab is not running")
        raise SystemExit(1)
    if as_json:
        click.echo(state.to_json())
    alive = running(state)
    for process in state.processes:
        mark = "running" if alive[process.name] else "STOPPED"
        click.echo(f"{process.name:14} pid {process.pid:<8} {mark}")
    for endpoint in state.endpoints:
        click.echo(
            f"  {endpoint.service:14} {endpoint.ip}:{endpoint.port}/{endpoint.proto}"
            f"  {endpoint.name}"
        )
    click.echo(f"config: {state.config_path}")
    raise SystemExit(0 if all(alive.values()) else 1)
