"""The lab's vulnerability feeds: small files in the feeds' exact published formats.

`write_feeds(directory, as_of)` renders the data in `riskiturva/lab/intel/` as the four
feeds publish it, dated `as_of`: `known_exploited_vulnerabilities.json` (CISA KEV),
`nvd/cves.json` (one NVD CVE API 2.0 response page), `epss_scores-YYYY-MM-DD.csv.gz`
(FIRST EPSS) and `endoflife/<product>.json` (endoflife.date API v1). `riskiturva lab up`
serves them over HTTP on loopback for `riskiturva intel update`; the same folder works
with `riskiturva intel import`. A date in the past makes feeds that are out of date.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from riskiturva.lab.manifest import Manifest

EOL_SCHEMA_VERSION = "1.2.1"
EPSS_MODEL = "v2025.03.14"


def feeds_address(manifest: Manifest) -> str:
    """Where `lab up` serves the feeds (port 80): beside the first name server, two up in
    the third octet (127.53.0.1 → 127.53.2.80), so two labs with their own name servers
    never clash."""
    octets = [int(o) for o in manifest.dns_addresses[0].split(".")]
    return f"127.{octets[1]}.{octets[2] + 2}.80"


def feeds_host(manifest: Manifest) -> str:
    """The feeds' name in the lab's DNS, in the partner's zone."""
    return f"feeds.{manifest.partner.domain}"


def _source(name: str) -> Any:
    text = (resources.files("riskiturva.lab") / "intel" / name).read_text(encoding="utf-8")
    return json.loads(text)


def lab_products() -> list[str]:
    return sorted(_source("endoflife.json")["products"])


def write_feeds(directory: Path, as_of: dt.datetime) -> Path:
    """Write the four feeds dated `as_of` into `directory`; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "nvd").mkdir(exist_ok=True)
    (directory / "endoflife").mkdir(exist_ok=True)
    kev = _source("kev.json")["vulnerabilities"]
    (directory / "known_exploited_vulnerabilities.json").write_text(
        json.dumps(
            {
                "title": "CISA Catalog of Known Exploited Vulnerabilities",
                "catalogVersion": as_of.strftime("%Y.%m.%d"),
                "dateReleased": as_of.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "count": len(kev),
                "vulnerabilities": kev,
            },
            indent=2,
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    cves = _source("nvd.json")["vulnerabilities"]
    (directory / "nvd" / "cves.json").write_text(
        json.dumps(
            {
                "resultsPerPage": len(cves),
                "startIndex": 0,
                "totalResults": len(cves),
                "format": "NVD_CVE",
                "version": "2.0",
                "timestamp": as_of.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000"),
                "vulnerabilities": cves,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    scores = epss_csv(as_of)
    (directory / f"epss_scores-{as_of:%Y-%m-%d}.csv.gz").write_bytes(scores)
    (directory / "epss_scores-current.csv.gz").write_bytes(scores)  # the published alias
    for name, product in _source("endoflife.json")["products"].items():
        (directory / "endoflife" / f"{name}.json").write_text(
            json.dumps(eol_response(name, product, as_of), indent=2), encoding="utf-8"
        )
    return directory


def epss_csv(as_of: dt.datetime) -> bytes:
    scores = sorted(_source("epss.json")["scores"].items())
    ranked = sorted(score for _, score in scores)
    out = io.StringIO()
    out.write(f"#model_version:{EPSS_MODEL},score_date:{as_of:%Y-%m-%d}T00:00:00Z\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["cve", "epss", "percentile"])
    for cve, score in scores:
        percentile = (ranked.index(score) + 1) / len(ranked)
        writer.writerow([cve, f"{score:.5f}", f"{percentile:.5f}"])
    return gzip.compress(out.getvalue().encode(), mtime=0)


def _date(value: Any) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) else None


def _phase(value: Any, today: dt.date) -> tuple[bool, dt.date | None]:
    """endoflife.date's `eol: 2025-01-05` / `eol: true` → (is over, from)."""
    if isinstance(value, bool):
        return value, None
    day = _date(value)
    return (day is not None and day <= today), day


def eol_response(name: str, product: dict[str, Any], as_of: dt.datetime) -> dict[str, Any]:
    """An API v1 `/products/{product}` response as endoflife.date renders it on `as_of`."""
    today = as_of.date()
    releases = []
    for raw in product["releases"]:
        is_eol, eol_from = _phase(raw.get("eol", False), today)
        release: dict[str, Any] = {
            "name": raw["releaseCycle"],
            "codename": raw.get("codename"),
            "label": _label(product.get("releaseLabel"), raw),
            "releaseDate": raw["releaseDate"],
            "isLts": bool(raw.get("lts")),
            "ltsFrom": raw["lts"] if isinstance(raw.get("lts"), str) else None,
        }
        if product["eoas"]:
            is_eoas, eoas_from = _phase(raw.get("eoas", False), today)
            release |= {"isEoas": is_eoas, "eoasFrom": _iso(eoas_from)}
        release |= {"isEol": is_eol, "eolFrom": _iso(eol_from)}
        maintained = not is_eol
        if product["eoes"]:
            if raw.get("eoes") is None:
                release |= {"isEoes": None, "eoesFrom": None}
            else:
                is_eoes, eoes_from = _phase(raw["eoes"], today)
                release |= {"isEoes": is_eoes, "eoesFrom": _iso(eoes_from)}
                maintained = maintained or not is_eoes
        latest = raw.get("latest")
        release |= {
            "isMaintained": maintained,
            "latest": {
                "name": str(latest),
                "date": raw.get("latestReleaseDate"),
                "link": raw.get("link"),
            }
            if latest
            else None,
        }
        releases.append(release)
    return {
        "schema_version": EOL_SCHEMA_VERSION,
        "generated_at": as_of.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "last_modified": as_of.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "result": {
            "name": name,
            "label": product["label"],
            "aliases": [],
            "category": product["category"],
            "tags": [product["category"]],
            "versionCommand": None,
            "identifiers": product["identifiers"],
            "labels": {"eol": "Security Support"},
            "links": {"html": f"https://endoflife.date/{name}"},
            "releases": releases,
        },
    }


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _label(template: str | None, raw: dict[str, Any]) -> str:
    if not template:
        return str(raw["releaseCycle"])
    return (
        template.replace("__RELEASE_CYCLE__", str(raw["releaseCycle"]))
        .replace("__CODENAME__", str(raw.get("codename") or ""))
        .strip()
    )
