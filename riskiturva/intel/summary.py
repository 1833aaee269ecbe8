"""The manager's line: "N known-exploited vulnerabilities, oldest open for D days; M systems
past end of support" — from one organisation's open findings.

A known-exploited vulnerability is one CVE on one subject (the CVE ids of the open
`software.kev.*` findings, which may list several); "oldest open" counts from the day the
oldest of those findings was first seen. A system is a scanned target (an address or a host
name) with open `software.eol.past` findings. Distribution builds that only need checking
(`software.kev.unconfirmed`) are counted apart and are not in N.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskiturva.intel import rules
from riskiturva.models import Finding, FindingStatus, Organisation

_KEV_CHECKS = (rules.KEV, rules.KEV_RANSOMWARE)
_SUMMARY_CHECKS = (*_KEV_CHECKS, rules.KEV_UNCONFIRMED, rules.EOL)


@dataclass(frozen=True)
class PatchStatus:
    """How up to date an organisation's software is, in counts a manager can read."""

    known_exploited: int  # open known-exploited CVEs (per subject)
    ransomware: int  # of those, used in ransomware campaigns
    oldest_open_days: int | None  # age of the oldest open known-exploited finding
    past_end_of_support: int  # systems running software past its end of support
    to_verify: int  # distribution builds that may carry a known-exploited CVE

    def line(self, language: str = "fi") -> str:
        """The sentence for the overview and the monthly report."""
        words = _WORDS.get(language, _WORDS["en"])
        first = words["kev_none"]
        if self.known_exploited:
            first = words["kev"].format(
                n=_counted(self.known_exploited, words["vulnerabilities"]),
                days=_counted(self.oldest_open_days or 0, words["days"]),
            )
        second = words["eol_none"]
        if self.past_end_of_support:
            second = words["eol"].format(m=_counted(self.past_end_of_support, words["systems"]))
        return f"{first}; {second}"


_WORDS: dict[str, dict[str, Any]] = {
    "fi": {
        "kev": "{n}, vanhin avoinna {days}",
        "kev_none": "ei tunnetusti hyödynnettyjä haavoittuvuuksia",
        "eol": "{m} ilman tietoturvatukea",
        "eol_none": "ei järjestelmiä ilman tietoturvatukea",
        "vulnerabilities": (
            "tunnetusti hyödynnetty haavoittuvuus",
            "tunnetusti hyödynnettyä haavoittuvuutta",
        ),
        "days": ("päivän", "päivää"),
        "systems": ("järjestelmä", "järjestelmää"),
    },
    "sv": {
        "kev": "{n}, den äldsta öppen i {days}",
        "kev_none": "inga kända utnyttjade sårbarheter",
        "eol": "{m} utan säkerhetsstöd",
        "eol_none": "inga system utan säkerhetsstöd",
        "vulnerabilities": ("känd utnyttjad sårbarhet", "kända utnyttjade sårbarheter"),
        "days": ("dag", "dagar"),
        "systems": ("system", "system"),
    },
    "en": {
        "kev": "{n}, oldest open for {days}",
        "kev_none": "no known-exploited vulnerabilities",
        "eol": "{m} past end of support",
        "eol_none": "no systems past end of support",
        "vulnerabilities": ("known-exploited vulnerability", "known-exploited vulnerabilities"),
        "days": ("day", "days"),
        "systems": ("system", "systems"),
    },
}


def _counted(count: int, forms: tuple[str, str]) -> str:
    return f"{count} {forms[0] if count == 1 else forms[1]}"


def patch_status_of(findings: Iterable[Finding], today: dt.date) -> PatchStatus:
    """The counts from an organisation's open findings (any others are ignored)."""
    known = ransomware = to_verify = 0
    oldest: dt.date | None = None
    systems: set[str] = set()
    for finding in findings:
        if finding.status != FindingStatus.OPEN:
            continue
        cves = len((finding.evidence or {}).get("vulnerabilities") or ()) or 1
        if finding.check_id in _KEV_CHECKS:
            known += cves
            if finding.check_id == rules.KEV_RANSOMWARE:
                ransomware += cves
            first = finding.first_seen.date()
            oldest = first if oldest is None or first < oldest else oldest
        elif finding.check_id == rules.KEV_UNCONFIRMED:
            to_verify += cves
        elif finding.check_id == rules.EOL:
            systems.add(finding.target)
    return PatchStatus(
        known_exploited=known,
        ransomware=ransomware,
        oldest_open_days=(today - oldest).days if oldest else None,
        past_end_of_support=len(systems),
        to_verify=to_verify,
    )


def patch_status(session: Session, organisation: str, today: dt.date) -> PatchStatus:
    """One organisation's patch status (the caller has checked it may see `organisation`)."""
    findings = session.scalars(
        select(Finding)
        .join(Organisation)
        .where(
            Organisation.slug == organisation,
            Finding.status == FindingStatus.OPEN,
            Finding.check_id.in_(_SUMMARY_CHECKS),
        )
    )
    return patch_status_of(findings, today)
