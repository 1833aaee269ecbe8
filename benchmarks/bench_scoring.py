"""Benchmark: score 1,000,000 open findings across 309 organisations (the target: < 5 s).

Synthetic but realistic inputs: every registered check id with its severity, ~150 assets
per organisation (criticality mixed, some e-services), several subjects (ports) per asset,
a few percent of findings accepted. Building the inputs is timed apart from scoring.

    python benchmarks/bench_scoring.py [--findings N] [--organisations N] [--seed N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import random
import time

from riskiturva.checks import load_registry
from riskiturva.scoring import (
    FindingStatus,
    ScoringAsset,
    ScoringFinding,
    plan_to_reach,
    priorities,
    score_organisation,
)

TODAY = dt.date(2026, 11, 2)


def synthetic_estate(
    findings: int, organisations: int, seed: int
) -> list[tuple[str, list[ScoringFinding], list[ScoringAsset]]]:
    rnd = random.Random(seed)
    checks = [(c.id, str(c.category), str(c.severity)) for c in load_registry().values()]
    estate = []
    per_org = findings // organisations
    for index in range(organisations):
        slug = f"kunta-{index:03d}"
        assets = [
            ScoringAsset(
                f"h{a}.{slug}.test",
                rnd.choices(("high", "medium", "low"), (2, 5, 3))[0],
                frozenset({"e-service"}) if rnd.random() < 0.2 else frozenset(),
            )
            for a in range(rnd.randint(100, 200))
        ]
        count = per_org + (1 if index < findings % organisations else 0)
        rows = []
        for n in range(count):
            check_id, category, severity = rnd.choice(checks)
            asset = rnd.choice(assets).value
            rows.append(
                ScoringFinding(
                    check_id,
                    category,
                    severity,
                    f"{asset}:{n}",
                    asset,
                    TODAY - dt.timedelta(days=rnd.randint(0, 365)),
                    FindingStatus.ACCEPTED if rnd.random() < 0.03 else FindingStatus.OPEN,
                )
            )
        estate.append((slug, rows, assets))
    return estate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=1_000_000)
    parser.add_argument("--organisations", type=int, default=309)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    registry = load_registry()

    started = time.perf_counter()
    estate = synthetic_estate(args.findings, args.organisations, args.seed)
    built = time.perf_counter() - started

    started = time.perf_counter()
    scores = [score_organisation(slug, rows, assets) for slug, rows, assets in estate]
    explained = sum(  # explanations are worked out when first read: read them all
        len(scope.contributions) for s in scores for scope in (s.overall, *s.categories.values())
    )
    scored = time.perf_counter() - started

    started = time.perf_counter()
    asset_grades = sum(1 for s in scores for a in s.assets.values() if a.grade)
    assets_read = time.perf_counter() - started

    started = time.perf_counter()
    ranked = [priorities(s, registry=registry, today=TODAY) for s in scores]
    ranked_s = time.perf_counter() - started

    started = time.perf_counter()
    plans = [plan_to_reach(s, "B", registry=registry, today=TODAY) for s in scores]
    planned = time.perf_counter() - started

    total = sum(len(rows) for _, rows, _ in estate)
    assets = sum(len(a) for _, _, a in estate)
    print(f"Python {platform.python_version()} on {platform.machine()}, {len(registry)} checks")
    print(f"{total:,} findings, {len(estate)} organisations, {assets:,} assets")
    print(f"build inputs      {built:6.2f} s (not part of scoring)")
    print(
        f"score_organisation {scored:5.2f} s  (overall + categories with their explanations, "
        f"{explained:,} lines)"
    )
    print(f"every asset score {assets_read:6.2f} s  ({asset_grades:,} assets, read on demand)")
    print(f"priorities        {ranked_s:6.2f} s  ({sum(map(len, ranked)):,} actions)")
    print(f"plan_to_reach(B)  {planned:6.2f} s")
    print(f"grades: {''.join(sorted(str(s.grade) for s in scores))[:60]}…")
    print(f"plan sizes: {sorted(len(p.actions) for p in plans)[len(plans) // 2]} (median)")


if __name__ == "__main__":
    main()
