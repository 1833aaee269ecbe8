"""Discovery over generated lab domains behind the lab's delay proxy.

Generates a lab estate of `--zones` municipalities (clones of the lab manifest's three, with
their child zones, records and the hosts discovery should find; no web or TLS servers),
served by the lab's Knot DNS, then runs `riskiturva discover` over all of them once with no
added latency and once behind the delay proxy (`--rtt-ms`, 20 by default), each in a fresh
process and a fresh database. Every organisation declares its domain and its own /24, the
clones of one template share a partner. Reports wall time, DNS queries sent, proposals (by
evidence source) and sightings outside scope to the `## Discovery` section of
docs/benchmarks.md.

    unshare --net sh -c 'ip link set lo up && .venv/bin/python benchmarks/bench_discovery.py'

Root is needed (the lab binds port 53 on loopback addresses).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from riskiturva.lab.estate import down, up
from riskiturva.lab.manifest import (
    ChildZone,
    DiscoveryTruth,
    Host,
    Manifest,
    Municipality,
    Partner,
    load_manifest,
)

SECTION = "## Discovery"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def synthetic_manifest(count: int) -> Manifest:
    base = load_manifest()
    clones = []
    for index in range(count):
        template = base.municipalities[index % len(base.municipalities)]
        domain = f"k{index:03d}.test"
        octets = f"127.61.{index}"

        def renamed(text: str, template: Municipality = template, domain: str = domain) -> str:
            return text.replace(template.domain, domain)

        def address(ip: str, octets: str = octets) -> str:
            return f"{octets}.{ip.rsplit('.', 1)[1]}" if ip.startswith("127.60.") else ip

        hosts = tuple(Host(fqdn=renamed(h.fqdn), ip=address(h.ip)) for h in template.hosts)
        if index == 0:  # the lab's banner server wants at least one listener
            hosts += (Host(fqdn=f"palvelin.{domain}", ip=f"{octets}.20", services=("telnet",)),)
        clones.append(
            dataclasses.replace(
                template,
                slug=f"k{index:03d}",
                domain=domain,
                network=f"{octets}.0/24",
                nameservers=tuple(renamed(n) for n in template.nameservers),
                glue={renamed(k): v for k, v in template.glue.items()},
                records=tuple(renamed(r) for r in template.records if "_mta-sts" not in r),
                zones=tuple(
                    ChildZone(
                        renamed(z.domain),
                        address(z.wildcard) if z.wildcard else None,
                        tuple(renamed(r) for r in z.records),
                    )
                    for z in template.zones
                ),
                ptr={address(k): renamed(v) for k, v in template.ptr.items()},
                hosts=hosts,
                assets=({"kind": "domain", "value": domain},),
                expect=(),
                ct_names=(),
                discovery=DiscoveryTruth(),
            )
        )
    partner = Partner(
        base.partner.slug, base.partner.name, base.partner.domain,
        base.partner.nameservers, base.partner.records,
    )  # fmt: skip
    return dataclasses.replace(base, partner=partner, municipalities=tuple(clones))


def bench_config(config_path: Path, out: Path, database: Path) -> int:
    """The lab's configuration with each organisation's own /24 as its only network."""
    import tomllib

    raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    raw["settings"]["database_url"] = f"sqlite:///{database}"
    for organisation in raw["organisations"]:
        organisation["scope"]["networks"] = organisation["scope"]["networks"][:1]
    out.write_text(json.dumps(raw))
    return len(raw["organisations"])


def measure(config_file: Path) -> dict[str, Any]:
    from riskiturva import views
    from riskiturva.config import Config
    from riskiturva.db import open_store
    from riskiturva.discovery import run_discovery
    from riskiturva.runner import build_context

    config = Config.model_validate(json.loads(config_file.read_text()))
    sessions = open_store(config)
    started = time.perf_counter()
    report = run_discovery(sessions, config, context=build_context(config))
    elapsed = time.perf_counter() - started
    visible = [o.slug for o in config.organisations]
    with sessions() as session:
        queues = [views.review_queue(session, visible, s, scopes={}) for s in visible]
        queue = [a for q in queues for a in q.proposals]
        by_source = Counter(
            e.source for a in queue for e in {x.source: x for x in a.evidence}.values()
        )
        outside = sum(len(q.outside_scope) for q in queues)
    return {
        "seconds": elapsed,
        "status": str(report.status),
        "queries": report.queries,
        "errors": report.errors,
        "proposals": len(queue),
        "by_source": dict(sorted(by_source.items())),
        "wildcard_answers": sum(c.wildcard_answers for c in report.organisations.values()),
        "outside": outside,
    }


def run_round(count: int, rtt_ms: int, workdir: Path) -> dict[str, Any]:
    load = os.getloadavg()[0]
    directory = workdir / f"lab-{rtt_ms}ms"
    state = up(directory, dns_port=53, latency_ms=rtt_ms, manifest=synthetic_manifest(count))
    try:
        config_file = directory / "bench-config.json"
        organisations = bench_config(Path(state.config_path), config_file, directory / "rt.db")
        argv = [sys.executable, __file__, "--measure", str(config_file)]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"measurement failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        down(directory)
    return {"rtt_ms": rtt_ms, "organisations": organisations, "load": load, **result}


def markdown(rounds: list[dict[str, Any]]) -> str:
    lines = [
        SECTION,
        "",
        f"`benchmarks/bench_discovery.py` ({platform.machine()},"
        f" Python {platform.python_version()},",
        f"2 shared cores), {time.strftime('%Y-%m-%d')}: {rounds[0]['organisations']} generated lab",
        "municipalities (clones of the three lab ones: NSEC-signed, AXFR-open and unsigned",
        "zones, a wildcard child zone and an unsigned child zone each, PTR zones), each",
        "declaring its domain and its own /24; every source the lab configuration turns on",
        "(all but the ping sweep: word list of 129 labels, partner labels, NSEC walk, AXFR, DNS",
        "records, PTR of 254 addresses per organisation, CT against the lab's log; no web or",
        "TLS observations). One run each in a fresh process and database; with latency every",
        "DNS query crosses the lab's delay proxy (64 queries in flight).",
        "",
        "| added RTT | wall time | DNS queries | queries/s | proposals"
        " | wildcard answers dropped | outside scope | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for r in rounds:
        lines.append(
            f"| {r['rtt_ms']} ms | {r['seconds']:.1f} s | {r['queries']:,} | "
            f"{r['queries'] / r['seconds']:,.0f} | {r['proposals']} | {r['wildcard_answers']} | "
            f"{r['outside']} | {r['errors']} |"
        )
    sources = ", ".join(f"{k} {v}" for k, v in rounds[-1]["by_source"].items())
    load = ", ".join(f"{r['load']:.1f}" for r in rounds)
    lines += [
        "",
        f"Evidence of the proposals (one source counted once per asset): {sources}.",
        f"Load average of the machine at the start of each round: {load} (other jobs share",
        "its two cores). The time goes into parsing DNS messages (dnspython, one socket per",
        "query) and, with latency, into the Python delay proxy: per organisation about 500",
        "queries — half of them the PTR sweep of its /24, 130 word-list labels per zone that",
        "no walk or transfer could read, one query per name of a walked zone.",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    current = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    if SECTION in current:
        head, _, rest = current.partition(SECTION)
        tail = rest.split("\n## ", 1)
        current = head + text + ("\n## " + tail[1] if len(tail) > 1 else "")
    else:
        current = current.rstrip("\n") + "\n\n" + text
    DOCS.write_text(current, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--zones", type=int, default=120)
    parser.add_argument("--rtt-ms", type=int, default=20)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    with tempfile.TemporaryDirectory(prefix="rt-bench-discovery-") as folder:
        workdir = Path(folder)
        workdir.chmod(0o755)
        rounds = [run_round(args.zones, rtt, workdir) for rtt in (0, args.rtt_ms)]
    for r in rounds:
        print(json.dumps(r))
    write_section(markdown(rounds))
    print(f"wrote the {SECTION!r} section of {DOCS}")


if __name__ == "__main__":
    main()
