"""Pure rules: identified software + the intelligence snapshot → finding drafts.

Matching policy (docs/vulnerabilities.md):

* A CVE applies when one of its vulnerable NVD match criteria covers the software's exact
  upstream version (a release cycle alone is never enough for a CVE).
* `high` and `medium` confidence: known-exploited CVEs (CISA KEV) raise
  `software.kev.ransomware` (those CISA marks as used by ransomware) and
  `software.kev.present` (the rest); other CVEs with an EPSS score at or above the
  threshold raise `software.epss.high`.
* `low` confidence — a distribution build, whose fixes may be backported under the same
  version — never raises those: a KEV match raises only `software.kev.unconfirmed`
  ("verify the package"), other CVEs nothing. Nor is such software judged by the upstream
  end-of-life dates (the distribution supports its own packages); the distribution release
  itself is judged when the banner names it (`+deb12u3` → Debian 12).
* End of life from endoflife.date: past the end of security support with no extended support
  running → `software.eol.past`; only extended support left → `software.eol.extended_support`;
  still supported but behind a newer supported major → `software.version.major_behind`.

A check whose sources are missing or older than the limit is not judged at all: the runner
records "vulnerability data out of date" and leaves its open findings as they were.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from riskiturva.collector import FindingDraft
from riskiturva.intel.feeds import Source
from riskiturva.intel.snapshot import CveMatch, IntelSnapshot
from riskiturva.intel.software import Confidence, Software, SoftwareSighting

KEV_RANSOMWARE = "software.kev.ransomware"
KEV = "software.kev.present"
KEV_UNCONFIRMED = "software.kev.unconfirmed"
EPSS_HIGH = "software.epss.high"
EOL = "software.eol.past"
EXTENDED_ONLY = "software.eol.extended_support"
MAJOR_BEHIND = "software.version.major_behind"

# The sources each check needs; a missing or stale one leaves the check unjudged.
REQUIRES: Mapping[str, tuple[Source, ...]] = {
    KEV_RANSOMWARE: (Source.NVD, Source.KEV),
    KEV: (Source.NVD, Source.KEV),
    KEV_UNCONFIRMED: (Source.NVD, Source.KEV),
    EPSS_HIGH: (Source.NVD, Source.EPSS),
    EOL: (Source.EOL,),
    EXTENDED_ONLY: (Source.EOL,),
    MAJOR_BEHIND: (Source.EOL,),
}
CHECK_IDS: frozenset[str] = frozenset(REQUIRES)
# Evidence refreshed on every sighting without counting as a change (see store.reconcile).
DATA_AS_OF = "data_as_of"
# Debian package names for a verification command on distribution builds.
_DEBIAN_PACKAGES = {
    "openbsd:openssh": "openssh-server",
    "apache:http_server": "apache2",
    "f5:nginx": "nginx",
    "php:php": "php",
    "exim:exim": "exim4",
    "openssl:openssl": "openssl",
}


def unavailable_checks(intel: IntelSnapshot | None) -> dict[str, str]:
    """Check id → why it cannot be judged now (no data, or data out of date)."""
    if intel is None:
        return dict.fromkeys(CHECK_IDS, "no vulnerability data: run `riskiturva intel update`")
    refused = {}
    for check_id, sources in REQUIRES.items():
        reasons = [
            f"{s.label} {intel.freshness.problems[s]}"
            for s in sources
            if s in intel.freshness.problems
        ]
        if reasons:
            refused[check_id] = "; ".join(reasons)
    return refused


def judge_software(
    sightings: Iterable[SoftwareSighting], intel: IntelSnapshot, allowed: Iterable[str]
) -> list[FindingDraft]:
    """Finding drafts for the allowed checks (those whose data is fresh)."""
    allowed_ids = frozenset(allowed)
    drafts: list[FindingDraft] = []
    # The same software (product, version, evidence) on many subjects is judged once.
    judged: dict[Software, list[FindingDraft]] = {}
    for sighting in sightings:
        template = judged.get(sighting.software)
        if template is None:
            template = judged[sighting.software] = [
                *_vulnerability_findings(sighting, intel, allowed_ids),
                *_lifecycle_findings(sighting, intel, allowed_ids),
            ]
            drafts += template
            continue
        drafts += [_on(draft, sighting) for draft in template]
    return [d for d in drafts if d.check_id in allowed_ids]


def _on(draft: FindingDraft, sighting: SoftwareSighting) -> FindingDraft:
    """A verdict drawn for the same software, on another subject."""
    verify = [sighting.reproduce, *list(draft.evidence["verify"])[1:]]
    if draft.check_id == KEV_UNCONFIRMED:  # its commands do not name the subject
        verify = list(draft.evidence["verify"])
    return FindingDraft(
        draft.check_id,
        {**draft.evidence, "verify": verify},
        subject=_subject(sighting),
        reproduce=sighting.reproduce,
    )


def _subject(sighting: SoftwareSighting) -> str:
    return f"{sighting.subject}#{sighting.software.key}"


def _base(
    sighting: SoftwareSighting, intel: IntelSnapshot, sources: Iterable[Source]
) -> dict[str, Any]:
    software = sighting.software
    return {
        "software": software.product,
        "version": software.version or software.cycle,
        "cpe": software.cpe,
        "confidence": str(software.confidence),
        "identified_by": software.evidence,
        "distribution": software.distribution or None,
        DATA_AS_OF: {
            str(s): intel.freshness.as_of[s].date().isoformat()
            for s in sources
            if s in intel.freshness.as_of
        },
    }


def _draft(
    check_id: str, sighting: SoftwareSighting, evidence: dict[str, Any], verify: list[str]
) -> FindingDraft:
    return FindingDraft(
        check_id,
        evidence | {"verify": verify},
        subject=_subject(sighting),
        reproduce=sighting.reproduce,
    )


def _vulnerability_findings(
    sighting: SoftwareSighting, intel: IntelSnapshot, allowed: frozenset[str]
) -> list[FindingDraft]:
    software = sighting.software
    if not allowed & {KEV, KEV_RANSOMWARE, KEV_UNCONFIRMED, EPSS_HIGH} or not software.version:
        return []
    # NVD lists distribution releases (cpe:2.3:o:debian:debian_linux:9.0) as affected when
    # the distribution shipped a vulnerable package, not when every such system has it: an
    # operating system derived from a banner is judged by its lifecycle only.
    if software.cpe.startswith("cpe:2.3:o:"):
        return []
    matches = intel.vulnerabilities(software)
    if not matches:
        return []
    known = [(m, intel.kev(m.cve_id)) for m in matches]
    exploited = [(m, k) for m, k in known if k is not None]
    drafts = []
    if software.confidence is Confidence.LOW:
        if exploited:
            evidence = _base(sighting, intel, (Source.NVD, Source.KEV)) | {
                "vulnerabilities": [_kev_item(m, k) for m, k in exploited],
                "package": software.package or None,
            }
            drafts.append(
                _draft(KEV_UNCONFIRMED, sighting, evidence, _backport_checks(software, exploited))
            )
        return drafts
    verify = [sighting.reproduce]
    for check_id, chosen in (
        (KEV_RANSOMWARE, [(m, k) for m, k in exploited if k.ransomware]),
        (KEV, [(m, k) for m, k in exploited if not k.ransomware]),
    ):
        if chosen:
            evidence = _base(sighting, intel, (Source.NVD, Source.KEV)) | {
                "vulnerabilities": [_kev_item(m, k) for m, k in chosen],
            }
            drafts.append(_draft(check_id, sighting, evidence, verify))
    if EPSS_HIGH in allowed:
        others = [m for m, k in known if k is None]
        scores = intel.epss(m.cve_id for m in others)
        likely = [m for m in others if scores.get(m.cve_id, 0.0) >= intel.epss_threshold]
        if likely:
            evidence = _base(sighting, intel, (Source.NVD, Source.EPSS)) | {
                "vulnerabilities": [
                    _cve_item(m) | {"epss": round(scores[m.cve_id], 5)}
                    for m in sorted(likely, key=lambda m: -scores[m.cve_id])
                ],
                "epss_threshold": intel.epss_threshold,
            }
            drafts.append(_draft(EPSS_HIGH, sighting, evidence, verify))
    return drafts


def _cve_item(match: CveMatch) -> dict[str, Any]:
    return {
        "cve": match.cve_id,
        "criteria": match.criteria,
        "range": match.range,
        "cvss": match.cvss_score,
        "severity": match.cvss_severity,
    }


def _kev_item(match: CveMatch, kev: Any) -> dict[str, Any]:
    return _cve_item(match) | {
        "kev_added": kev.date_added.isoformat(),
        "kev_due": kev.due_date.isoformat(),
        "ransomware": kev.ransomware,
        "name": kev.name,
        "required_action": kev.required_action,
    }


def _backport_checks(software: Software, exploited: list[tuple[CveMatch, Any]]) -> list[str]:
    """Commands that show whether the distribution's package carries the fixes."""
    cves = "|".join(m.cve_id for m, _ in exploited)
    package = _DEBIAN_PACKAGES.get(software.key)
    commands = []
    if package and software.distribution.startswith(("Debian", "Ubuntu", "Raspbian")):
        commands.append(f"apt-get changelog {package} | grep -E {shlex.quote(cves)}")
    elif software.distribution.startswith(("Red Hat", "CentOS", "Rocky", "AlmaLinux", "Fedora")):
        commands.append(f"rpm -q --changelog <package> | grep -E {shlex.quote(cves)}")
    commands += [f"https://nvd.nist.gov/vuln/detail/{m.cve_id}" for m, _ in exploited]
    return commands


def _lifecycle_findings(
    sighting: SoftwareSighting, intel: IntelSnapshot, allowed: frozenset[str]
) -> list[FindingDraft]:
    software = sighting.software
    if not allowed & {EOL, EXTENDED_ONLY, MAJOR_BEHIND}:
        return []
    # A distribution supports its own builds past upstream's dates: judge the release instead.
    if software.confidence is Confidence.LOW:
        return []
    lifecycle = intel.lifecycle(software)
    if lifecycle is None:
        return []
    release, today = lifecycle.release, intel.today
    evidence = _base(sighting, intel, (Source.EOL,)) | {
        "product": lifecycle.label,
        "cycle": release.name,
        "support_ended": release.eol_from.isoformat() if release.eol_from else None,
        # An unlisted old cycle ended no later than the newer one named here.
        "inferred_from_cycle": lifecycle.inferred_from,
        "extended_support_until": release.eoes_from.isoformat() if release.eoes_from else None,
        "latest_in_cycle": release.latest,
        "supported_newer": list(lifecycle.newer_majors),
        "lifecycle": f"https://endoflife.date/{lifecycle.product}",
    }
    verify = [sighting.reproduce, f"https://endoflife.date/{lifecycle.product}"]
    if release.ended(today):
        check_id = EXTENDED_ONLY if release.extended_until(today) else EOL
        return [_draft(check_id, sighting, evidence, verify)]
    # A long-term support cycle is the supported choice even when a newer major is out.
    if lifecycle.newer_majors and not release.is_lts:
        return [_draft(MAJOR_BEHIND, sighting, evidence, verify)]
    return []
