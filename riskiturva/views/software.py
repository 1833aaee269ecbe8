"""One organisation's software: known-exploited vulnerabilities with their deadlines,
software past its end of support, and the manager's line.

`software` is the software page: every open finding of the `software` category as a typed
row (CVE ids, KEV dates, the release cycle and its end of support, the fix-by day), with the
vulnerability data the latest judging scan used. `patch_status` is the manager's line the
overview and the monthly report show: "N known-exploited vulnerabilities, oldest open for D
days; M systems past end of support".

Counting: a known-exploited vulnerability is one CVE on one subject (an open
`software.kev.*` finding lists the CVEs its version carries); "oldest open" counts from the
day the oldest of those findings was first seen. A system is a scanned target (an address
or a host name) with an open `software.eol.past` finding. Distribution builds that only
need checking (`software.kev.unconfirmed`) are counted apart and are not in N. Accepted
risks and false positives are not open, so they are not counted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from riskiturva.checks import Check, Severity
from riskiturva.i18n import translator
from riskiturva.intel import rules
from riskiturva.models import Finding, FindingStatus, ScanRun
from riskiturva.scoring import due_date
from riskiturva.views.clock import local_day
from riskiturva.views.organisations import OrganisationRef
from riskiturva.views.organisations import organisation as visible_organisation
from riskiturva.views.severity import registry_severity

KNOWN_EXPLOITED = (rules.KEV_RANSOMWARE, rules.KEV)
END_OF_SUPPORT = (rules.EOL,)
# The words of the manager's line (shared by the dashboard and the reports).
DOMAIN = "software"
_RUNS_SEARCHED = 20  # the newest runs of the organisation looked through


@dataclass(frozen=True, slots=True)
class Vulnerability:
    """One CVE a finding's software version carries, as the evidence lists it."""

    cve: str
    cvss: float | None
    range: str | None  # the NVD match's affected versions (">= 4.87, <= 4.91")
    kev_added: dt.date | None  # the day CISA listed it as known exploited
    kev_due: dt.date | None  # CISA's due date for US federal agencies
    ransomware: bool
    epss: float | None
    required_action: str | None


@dataclass(frozen=True, slots=True)
class SoftwareFinding:
    """An open finding about identified software, with what its evidence says."""

    id: int
    check_id: str
    severity: Severity
    subject: str
    target: str  # the scanned address or host name (a "system")
    asset: str
    software: str
    version: str | None
    confidence: str
    distribution: str | None
    vulnerabilities: tuple[Vulnerability, ...]
    cycle: str | None
    support_ended: dt.date | None
    extended_support_until: dt.date | None
    supported_newer: tuple[str, ...]
    first_seen: dt.date
    due: dt.date | None  # first seen + the check's deadline (KEV: 14 days)
    days_open: int
    data_as_of: Mapping[str, str]  # source → the date of the data the verdict used

    @property
    def overdue(self) -> bool:
        return self.due is not None and self.first_seen + dt.timedelta(self.days_open) > self.due

    @property
    def cves(self) -> tuple[str, ...]:
        return tuple(v.cve for v in self.vulnerabilities)


@dataclass(frozen=True, slots=True)
class PatchStatus:
    """How up to date an organisation's software is, in counts a manager can read."""

    known_exploited: int  # open known-exploited CVEs (per subject)
    ransomware: int  # of those, used in ransomware campaigns
    oldest_open_days: int | None  # age of the oldest open known-exploited finding
    past_end_of_support: int  # systems running software past its end of support
    to_verify: int  # distribution builds that may carry a known-exploited CVE

    def line(self, language: str) -> str:
        """The sentence for the overview and the monthly report, in `language`."""
        _ = translator(language, DOMAIN)
        if self.known_exploited:
            days = _.ngettext("{count} day", "{count} days", self.oldest_open_days or 0)
            first = _.ngettext(
                "{count} known-exploited vulnerability, oldest open for {days}",
                "{count} known-exploited vulnerabilities, oldest open for {days}",
                self.known_exploited,
                days=days,
            )
        else:
            first = _("no known-exploited vulnerabilities")
        if self.past_end_of_support:
            second = _.ngettext(
                "{count} system past end of support",
                "{count} systems past end of support",
                self.past_end_of_support,
            )
        else:
            second = _("no systems past end of support")
        return _("{first}; {second}", first=first, second=second)


@dataclass(frozen=True, slots=True)
class VulnerabilityData:
    """The vulnerability data the organisation's latest judging scan used."""

    run_id: int
    collector: str
    at: dt.datetime
    status: str  # ok / out_of_date / missing
    as_of: Mapping[str, dt.date]  # source → its data's date
    max_age_days: int | None
    not_judged: tuple[str, ...]  # checks left unjudged for missing or stale data

    @property
    def usable(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class SoftwareView:
    organisation: OrganisationRef
    as_of: dt.datetime
    findings: tuple[SoftwareFinding, ...]  # every open software finding, most urgent first
    data: VulnerabilityData | None  # None: no scan has judged software yet

    @property
    def status(self) -> PatchStatus:
        return patch_status_of(self.findings)

    def of(self, *check_ids: str) -> tuple[SoftwareFinding, ...]:
        return tuple(f for f in self.findings if f.check_id in check_ids)

    @property
    def known_exploited(self) -> tuple[SoftwareFinding, ...]:
        return self.of(*KNOWN_EXPLOITED)

    @property
    def to_verify(self) -> tuple[SoftwareFinding, ...]:
        return self.of(rules.KEV_UNCONFIRMED)

    @property
    def end_of_support(self) -> tuple[SoftwareFinding, ...]:
        return self.of(rules.EOL, rules.EXTENDED_ONLY, rules.MAJOR_BEHIND)

    @property
    def likely_exploited(self) -> tuple[SoftwareFinding, ...]:
        return self.of(rules.EPSS_HIGH)


def patch_status_of(findings: Iterable[SoftwareFinding]) -> PatchStatus:
    known = ransomware = to_verify = 0
    oldest: int | None = None
    systems: set[str] = set()
    for finding in findings:
        cves = len(finding.vulnerabilities) or 1
        if finding.check_id in KNOWN_EXPLOITED:
            known += cves
            if finding.check_id == rules.KEV_RANSOMWARE:
                ransomware += cves
            oldest = max(finding.days_open, oldest or 0)
        elif finding.check_id == rules.KEV_UNCONFIRMED:
            to_verify += cves
        elif finding.check_id in END_OF_SUPPORT:
            systems.add(finding.target)
    return PatchStatus(known, ransomware, oldest, len(systems), to_verify)


def _day(value: Any) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) and value else None


def _vulnerability(item: Mapping[str, Any]) -> Vulnerability:
    return Vulnerability(
        cve=str(item.get("cve")),
        cvss=item.get("cvss"),
        range=item.get("range"),
        kev_added=_day(item.get("kev_added")),
        kev_due=_day(item.get("kev_due")),
        ransomware=bool(item.get("ransomware")),
        epss=item.get("epss"),
        required_action=item.get("required_action"),
    )


_URGENCY = {
    rules.KEV_RANSOMWARE: 0,
    rules.KEV: 1,
    rules.EPSS_HIGH: 2,
    rules.EOL: 3,
    rules.KEV_UNCONFIRMED: 4,
    rules.EXTENDED_ONLY: 5,
    rules.MAJOR_BEHIND: 6,
}


def _row(finding: Finding, registry: Mapping[str, Check], today: dt.date) -> SoftwareFinding:
    evidence = finding.evidence or {}
    severity = registry_severity(finding, registry)
    check = registry.get(finding.check_id)
    first_seen = local_day(finding.first_seen)
    return SoftwareFinding(
        id=finding.id,
        check_id=finding.check_id,
        severity=severity,
        subject=finding.subject,
        target=finding.target,
        asset=finding.asset,
        software=str(evidence.get("software") or finding.subject),
        version=evidence.get("version"),
        confidence=str(evidence.get("confidence") or ""),
        distribution=evidence.get("distribution"),
        vulnerabilities=tuple(_vulnerability(v) for v in evidence.get("vulnerabilities") or ()),
        cycle=evidence.get("cycle"),
        support_ended=_day(evidence.get("support_ended")),
        extended_support_until=_day(evidence.get("extended_support_until")),
        supported_newer=tuple(evidence.get("supported_newer") or ()),
        first_seen=first_seen,
        due=due_date(severity, first_seen, check.deadline_days if check else None),
        days_open=(today - first_seen).days,
        data_as_of=dict(evidence.get(rules.DATA_AS_OF) or {}),
    )


def open_software(
    session: Session,
    organisation: OrganisationRef,
    *,
    today: dt.date,
    registry: Mapping[str, Check],
    check_ids: Collection[str] = rules.CHECK_IDS,
) -> tuple[SoftwareFinding, ...]:
    """The organisation's open software findings of `check_ids`, most urgent first, with
    their ages on `today`."""
    rows = [
        _row(finding, registry, today)
        for finding in session.scalars(
            select(Finding).where(
                Finding.organisation_id == organisation.id,
                Finding.status == FindingStatus.OPEN,
                Finding.check_id.in_(sorted(check_ids)),
            )
        )
    ]
    return tuple(sorted(rows, key=lambda r: (_URGENCY.get(r.check_id, 9), r.first_seen, r.subject)))


def patch_status(
    session: Session,
    organisation: OrganisationRef,
    *,
    today: dt.date,
    registry: Mapping[str, Check],
) -> PatchStatus:
    """The manager's line's counts for one organisation (already known to be visible)."""
    summary = (*KNOWN_EXPLOITED, rules.KEV_UNCONFIRMED, *END_OF_SUPPORT)
    return patch_status_of(
        open_software(session, organisation, today=today, registry=registry, check_ids=summary)
    )


def _vulnerability_data(session: Session, slug: str) -> VulnerabilityData | None:
    """What the newest finished run that judged software for `slug` recorded."""
    runs = session.scalars(
        select(ScanRun)
        # `organisations` is a JSON list of slugs (see views.scans.runs).
        .where(
            cast(ScanRun.organisations, String).like(f'%"{slug}"%'),
            ScanRun.finished_at.is_not(None),
        )
        .order_by(ScanRun.id.desc())
        .limit(_RUNS_SEARCHED)
    )
    for run in runs:
        data = (run.counts or {}).get("vulnerability_data")
        if not data:
            continue
        return VulnerabilityData(
            run_id=run.id,
            collector=run.collector,
            at=run.started_at,
            status=str(data.get("status")),
            as_of={str(k): dt.date.fromisoformat(v) for k, v in (data.get("as_of") or {}).items()},
            max_age_days=data.get("max_age_days"),
            not_judged=tuple(data.get("not_judged") or ()),
        )
    return None


def software(
    session: Session,
    visible: Collection[str],
    slug: str,
    *,
    now: dt.datetime,
    registry: Mapping[str, Check],
) -> SoftwareView:
    """The visible organisation's software page at `now` (`NotVisible` otherwise)."""
    org = visible_organisation(session, visible, slug)
    return SoftwareView(
        organisation=org,
        as_of=now,
        findings=open_software(session, org, today=local_day(now), registry=registry),
        data=_vulnerability_data(session, org.slug),
    )
