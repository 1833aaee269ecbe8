"""Benchmark: time to make one monthly report, and the monthly job for many organisations.

A synthetic estate in a fresh SQLite database: organisations with ~30 assets and ~120
findings each (random registered checks), scanned in the previous month and again in the
report month (about a tenth fixed, a few new), twelve month-end snapshots. Timed apart:
assembling the data from the store, rendering the HTML (with the chart), laying out the
PDF, and the whole monthly job (render, archive; no recipients, so no e-mail).

    python benchmarks/bench_reports.py [--organisations N] [--repeats N] [--seed N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import random
import tempfile
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from riskiturva import db
from riskiturva.checks import load_registry
from riskiturva.config import Config
from riskiturva.models import Organisation, RunStatus, ScanRun, ScoreSnapshot
from riskiturva.period import Month
from riskiturva.reports.delivery import deliver_monthly
from riskiturva.reports.render import organisation_html, pdf_from_html
from riskiturva.store import ObservedFinding, make_engine, reconcile, session_factory, sync_config
from riskiturva.views.period import organisation_report

MONTH = Month(2026, 10)
NOW = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.UTC)
SCANS = (dt.datetime(2026, 9, 20, 2, tzinfo=dt.UTC), dt.datetime(2026, 10, 20, 2, tzinfo=dt.UTC))


def estate_config(organisations: int, data_dir: Path) -> Config:
    orgs = []
    for index in range(organisations):
        domain = f"kunta{index:03d}.test"
        orgs.append(
            {
                "slug": f"kunta-{index:03d}",
                "name": {"fi": f"Kunta {index}", "sv": f"Kommun {index}", "en": f"Town {index}"},
                "scope": {"domains": [domain]},
                "assets": [
                    {"kind": "host", "value": f"h{a}.{domain}", "criticality": "medium"}
                    for a in range(30)
                ],
            }
        )
    return Config.model_validate({"settings": {"data_dir": str(data_dir)}, "organisations": orgs})


def fill(sessions: sessionmaker[Session], config: Config, seed: int) -> None:
    rnd = random.Random(seed)
    checks = [c for c in load_registry().values() if c.category != "services"]
    with sessions.begin() as session:
        sync_config(session, config)
        plans = {}
        for org in config.organisations:
            hosts = [a.value for a in org.assets]
            first = {(rnd.choice(checks).id, f"{rnd.choice(hosts)}:443") for _ in range(120)}
            kept = {f for f in first if rnd.random() > 0.1}
            new = {(rnd.choice(checks).id, f"{rnd.choice(hosts)}:443") for _ in range(5)}
            plans[org.slug] = (first, kept | new)
        for scan_index, at in enumerate(SCANS):
            run = ScanRun(
                collector="tls",
                organisations=list(plans),
                status=RunStatus.OK,
                started_at=at,
                finished_at=at,
            )
            session.add(run)
            session.flush()
            for org in config.organisations:
                organisation = session.scalar(select(Organisation).filter_by(slug=org.slug))
                seen = plans[org.slug][scan_index]
                reconcile(
                    session,
                    organisation=organisation,
                    collector="tls",
                    run_id=run.id,
                    observed=[
                        ObservedFinding(
                            check_id=check_id,
                            subject=subject,
                            target=subject,
                            asset=subject.rsplit(":", 1)[0],
                            category=check_id.split(".")[0],
                            severity=str(load_registry()[check_id].severity),
                            evidence={},
                        )
                        for check_id, subject in seen
                    ],
                    scanned_ok={s for _, s in plans[org.slug][0] | plans[org.slug][1]},
                    now=at,
                )
                for back in range(1, 12) if scan_index == 0 else ():
                    month = MONTH.back(back)
                    session.add(
                        ScoreSnapshot(
                            organisation_id=organisation.id,
                            day=month.last_day,
                            score=rnd.uniform(40, 95),
                            grade="C",
                            scoring_version="1.0",
                            category_scores={},
                            open_counts={},
                        )
                    )
            session.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--organisations", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    config = estate_config(args.organisations, folder / "data")
    engine = make_engine(f"sqlite:///{folder / 'bench.db'}")
    db.upgrade(engine)
    sessions = session_factory(engine)
    started = time.perf_counter()
    fill(sessions, config, args.seed)
    print(f"estate: {args.organisations} organisations in {time.perf_counter() - started:.1f} s")

    slug = config.organisations[0].slug
    pdf_from_html("<p>warm-up</p>")  # loading Pango and fonts happens once per process
    timings: dict[str, list[float]] = {"data": [], "html": [], "pdf": []}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        with sessions() as session:
            report = organisation_report(
                session, slug, MONTH, visible=[slug], now=NOW, registry=load_registry()
            )
        t1 = time.perf_counter()
        html = organisation_html(report, "fi")
        t2 = time.perf_counter()
        pdf = pdf_from_html(html)
        t3 = time.perf_counter()
        timings["data"].append(t1 - t0)
        timings["html"].append(t2 - t1)
        timings["pdf"].append(t3 - t2)
    appendix = len(report.appendix)
    size = len(pdf) // 1024
    print(f"one report ({appendix} appendix rows, {size} KiB PDF), best of {args.repeats}:")
    for name, values in timings.items():
        median = sorted(values)[len(values) // 2]
        print(f"  {name:5s} {min(values) * 1000:7.0f} ms   (median {median * 1000:.0f} ms)")
    print(f"  total {sum(min(v) for v in timings.values()) * 1000:7.0f} ms")

    started = time.perf_counter()
    deliveries = deliver_monthly(sessions, config, MONTH, NOW)
    elapsed = time.perf_counter() - started
    print(
        f"monthly job: {len(deliveries)} reports rendered and archived in {elapsed:.1f} s "
        f"({elapsed / len(deliveries):.2f} s each)"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )


if __name__ == "__main__":
    main()
