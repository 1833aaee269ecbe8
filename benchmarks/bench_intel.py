"""Benchmark: matching 10,000 software observations against a full-size NVD/KEV store.

Generates, in the published formats, a store the size of NVD at the end of 2026 — 310,000
CVE records in yearly NVD 2.0 feed files (`nvdcve-2.0-YYYY.json.gz`, the CVE API 2.0
format), about 1.3 million vulnerable CPE match criteria (a quarter of the CVEs without
any, as NVD's analysis backlog leaves them), a 1,500-entry KEV catalogue, 310,000 EPSS
scores and the lab's endoflife.date products — imports it with `riskiturva intel import`'s
code into SQLite, then judges 10,000 software observations (30 products, versions spread
over their history, a third of them distribution builds) with the vulnerability rules, as
a scan does. Each phase runs in its own process, so its peak memory is its own.

    python benchmarks/bench_intel.py [--cves 310000] [--observations 10000] [--dir DIR]

Prints the figures for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NOW = dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC)
# Products the collectors identify, with about as many CVEs as NVD lists for them.
KNOWN = {
    "openbsd:openssh": 140, "apache:http_server": 270, "f5:nginx": 40,
    "igor_sysoev:nginx": 35, "php:php": 700, "openssl:openssl": 250, "oracle:mysql": 1400,
    "exim:exim": 60, "drupal:drupal": 350, "wordpress:wordpress": 420, "joomla:joomla\\!": 160,
    "microsoft:internet_information_services": 60, "redis:redis": 60, "elastic:elasticsearch": 80,
    "apache:tomcat": 280, "postgresql:postgresql": 190, "mariadb:mariadb": 220,
    "lighttpd:lighttpd": 40, "proftpd:proftpd": 40, "vsftpd_project:vsftpd": 5,
    "postfix:postfix": 15, "dovecot:dovecot": 45, "isc:bind": 150, "samba:samba": 220,
    "squid-cache:squid": 130, "haproxy:haproxy": 30, "eclipse:jetty": 40,
    "litespeedtech:litespeed_web_server": 10, "openresty:openresty": 5, "zabbix:zabbix": 110,
}  # fmt: skip
YEARS = range(2002, 2027)
VECTOR = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
DESCRIPTION = (
    "A vulnerability in a product allows a remote attacker to do something it should not, "
    "under conditions that the description explains in a sentence or two of ordinary length."
)


def _version(rng: random.Random) -> str:
    return f"{rng.randint(0, 12)}.{rng.randint(0, 30)}.{rng.randint(0, 60)}"


def _criteria(rng: random.Random, key: str) -> list[dict]:
    vendor, product = key.split(":")
    base = f"cpe:2.3:a:{vendor}:{product}"
    count = rng.choices([1, 2, 3, 5, 8, 20, 60], weights=[30, 25, 15, 12, 10, 6, 2])[0]
    out = []
    for _ in range(count):
        match = {
            "vulnerable": True,
            "matchCriteriaId": str(uuid.UUID(int=rng.getrandbits(128))).upper(),
        }
        if rng.random() < 0.55:
            low, high = sorted([_version(rng), _version(rng)])
            match["criteria"] = f"{base}:*:*:*:*:*:*:*:*"
            if rng.random() < 0.6:
                match["versionStartIncluding"] = low
            match["versionEndExcluding" if rng.random() < 0.7 else "versionEndIncluding"] = high
        else:
            match["criteria"] = f"{base}:{_version(rng)}:*:*:*:*:*:*:*"
        out.append(match)
    return out


def _products(rng: random.Random, count: int) -> list[str]:
    """The long tail: thousands of other vendors' products (Zipf-like)."""
    return [f"vendor{rng.randint(1, 20000)}:product{rng.randint(1, 3)}" for _ in range(count)]


def generate(directory: Path, total: int, seed: int = 19) -> dict[str, int]:
    """Write the feeds into `directory` in their published formats."""
    from riskiturva.lab._intel import write_feeds

    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    # The lab's KEV, EPSS and endoflife.date files give the formats; scale KEV and EPSS up.
    write_feeds(directory, NOW)
    (directory / "nvd" / "cves.json").unlink()
    (directory / "epss_scores-current.csv.gz").unlink()
    known = [k for k, n in KNOWN.items() for _ in range(n)]
    per_year = total // len(YEARS)
    criteria_total = 0
    all_ids = []
    for year in YEARS:
        records = []
        for number in range(per_year):
            cve_id = f"CVE-{year}-{10000 + number}"
            all_ids.append(cve_id)
            analysed = rng.random() > 0.25
            configurations = []
            if analysed:
                key = (
                    known[rng.randrange(len(known))]
                    if rng.random() < 0.03
                    else _products(rng, 1)[0]
                )
                matches = _criteria(rng, key)
                criteria_total += len(matches)
                configurations = [
                    {"nodes": [{"operator": "OR", "negate": False, "cpeMatch": matches}]}
                ]
            score = round(rng.uniform(2, 10), 1)
            severity = (
                "CRITICAL"
                if score >= 9
                else "HIGH"
                if score >= 7
                else "MEDIUM"
                if score >= 4
                else "LOW"
            )
            cvss = {"version": "3.1", "vectorString": VECTOR, "baseScore": score}
            metric = {"source": "nvd@nist.gov", "type": "Primary", "cvssData": cvss}
            records.append(
                {
                    "cve": {
                        "id": cve_id,
                        "sourceIdentifier": "cve@mitre.org",
                        "published": f"{year}-06-01T10:00:00.000",
                        "lastModified": "2026-11-20T10:00:00.000",
                        "vulnStatus": "Analyzed" if analysed else "Awaiting Analysis",
                        "descriptions": [{"lang": "en", "value": DESCRIPTION}],
                        "metrics": {
                            "cvssMetricV31": [
                                metric | {"exploitabilityScore": 3.9, "impactScore": 5.9}
                            ]
                        },
                        "configurations": configurations,
                        "references": [{"url": f"https://example.org/advisories/{cve_id}"}],
                    }
                }
            )
            cvss["baseSeverity"] = severity
        page = {
            "resultsPerPage": len(records),
            "startIndex": 0,
            "totalResults": len(records),
            "format": "NVD_CVE",
            "version": "2.0",
            "timestamp": NOW.strftime("%Y-%m-%dT%H:%M:%S.000"),
            "vulnerabilities": records,
        }
        (directory / f"nvdcve-2.0-{year}.json.gz").write_bytes(
            gzip.compress(json.dumps(page).encode(), compresslevel=1)
        )
    # KEV: about 1,500 entries of the real catalogue's shape.
    kev_path = directory / "known_exploited_vulnerabilities.json"
    kev = json.loads(kev_path.read_text())
    template = kev["vulnerabilities"][0]
    chosen = rng.sample(all_ids, 1500)
    kev["vulnerabilities"] = [
        {**template, "cveID": c, "knownRansomwareCampaignUse": rng.choice(["Known", "Unknown"])}
        for c in chosen
    ]
    kev["count"] = len(kev["vulnerabilities"])
    kev_path.write_text(json.dumps(kev))
    # EPSS: a score for every CVE.
    lines = [
        f"#model_version:v2025.03.14,score_date:{NOW:%Y-%m-%d}T00:00:00Z",
        "cve,epss,percentile",
    ]
    lines += [f"{c},{rng.random() ** 8:.5f},{rng.random():.5f}" for c in all_ids]
    epss = directory / f"epss_scores-{NOW:%Y-%m-%d}.csv.gz"
    epss.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1))
    return {"cves": len(all_ids), "criteria": criteria_total, "kev": kev["count"]}


def observations(count: int, seed: int = 7) -> list:
    from riskiturva.intel.software import Confidence, Software, SoftwareSighting, cpe_name

    rng = random.Random(seed)
    keys = list(KNOWN)
    # Hosts run a few common versions of each product: about 40 per product in use.
    versions = {k: [_version(rng) for _ in range(40)] for k in keys}
    out = []
    for index in range(count):
        key = rng.choice(keys)
        vendor, product = key.split(":")
        version = rng.choice(versions[key])
        low = rng.random() < 0.33
        software = Software(
            product=product,
            cpe=cpe_name(vendor, product, version),
            evidence=f"bench: {product} {version}",
            confidence=Confidence.LOW if low else Confidence.HIGH,
            version=version,
            distribution="Debian" if low else "",
        )
        out.append(SoftwareSighting(f"192.0.{index // 250}.{index % 250}:80/tcp", software, "nmap"))
    return out


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_import(directory: Path, database: Path) -> dict[str, float]:
    from riskiturva.db import upgrade
    from riskiturva.intel.update import import_directory
    from riskiturva.store import make_engine, session_factory

    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)
    started = time.perf_counter()
    import_directory(session_factory(engine), directory, now=NOW)
    return {"seconds": time.perf_counter() - started, "peak_mib": _peak_mib()}


def phase_match(database: Path, count: int) -> dict[str, float]:
    from riskiturva.intel import rules
    from riskiturva.intel.snapshot import IntelSnapshot
    from riskiturva.store import make_engine, session_factory

    sightings = observations(count)
    sessions = session_factory(make_engine(f"sqlite:///{database}"))
    started = time.perf_counter()
    intel = IntelSnapshot(sessions, now=NOW, max_age_days=14, epss_threshold=0.1)
    drafts = rules.judge_software(sightings, intel, rules.CHECK_IDS)
    seconds = time.perf_counter() - started
    by_check: dict[str, int] = {}
    for draft in drafts:
        by_check[draft.check_id] = by_check.get(draft.check_id, 0) + 1
    return {"seconds": seconds, "peak_mib": _peak_mib(), "findings": len(drafts), **by_check}


def _child(phase: str, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--phase", phase, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cves", type=int, default=310_000)
    parser.add_argument("--observations", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--phase", choices=["import", "match"], default=None)
    parser.add_argument("--database", type=Path, default=None)
    args = parser.parse_args()
    if args.phase == "import":
        print(json.dumps(phase_import(args.dir, args.database)))
        return
    if args.phase == "match":
        print(json.dumps(phase_match(args.database, args.observations)))
        return
    directory = args.dir or Path(tempfile.mkdtemp(prefix="riskiturva-bench-intel-"))
    started = time.perf_counter()
    sizes = generate(directory / "feeds", args.cves)
    generated = time.perf_counter() - started
    feed_bytes = sum(p.stat().st_size for p in (directory / "feeds").rglob("*") if p.is_file())
    database = directory / "intel.db"
    imported = _child("import", "--dir", str(directory / "feeds"), "--database", str(database))
    matched = _child("match", "--database", str(database), "--observations", str(args.observations))
    again = _child("match", "--database", str(database), "--observations", str(args.observations))
    print(
        f"store: {sizes['cves']:,} CVEs, {sizes['criteria']:,} match criteria, "
        f"{sizes['kev']:,} KEV entries"
    )
    print(f"feed files: {feed_bytes / 2**20:.0f} MiB gzip, generated in {generated:.0f} s")
    size = database.stat().st_size / 2**20
    print(
        f"import: {imported['seconds']:.1f} s, peak {imported['peak_mib']:.0f} MiB; "
        f"database {size:.0f} MiB"
    )
    for label, run in (("match", matched), ("match again", again)):
        print(
            f"{label}: {args.observations:,} observations in {run['seconds']:.2f} s, "
            f"peak {run['peak_mib']:.0f} MiB, {run['findings']:,} findings"
        )
    print(json.dumps({k: v for k, v in matched.items() if k.startswith("software.")}))


if __name__ == "__main__":
    main()
