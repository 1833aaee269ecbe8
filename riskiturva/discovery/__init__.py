"""The discovery stage: find what an organisation did not know it had, and propose it.

Like a collector it *gathers* typed observations (`gather`, through the configured
resolver only, scope first) and *judges* them with pure rules (`judge`); then it applies
the judgement to the inventory: new proposals with their evidence (or, under a matching
auto-accept rule, active assets), names and addresses seen outside scope, names gone
(retirement proposed after `gone_after_runs` NXDOMAIN runs in a row, never deleted), new
certificates in CT, each a change event. One run is a `ScanRun` of collector
`discovery`. See docs/discovery.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import socket
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from riskiturva.alerts.outbox import record_proposals
from riskiturva.alerts.rules import ProposedAsset
from riskiturva.auth import audit
from riskiturva.collector import ScanContext
from riskiturva.config import AssetKind, Config, DiscoverySource
from riskiturva.config import Organisation as OrgConfig
from riskiturva.current import refresh_current_score
from riskiturva.dberrors import StoreWriteError, write_with_retry
from riskiturva.discovery.ct import certificate_log
from riskiturva.discovery.facts import Observations, Source
from riskiturva.discovery.gather import Plan, clean_name, gather_observations
from riskiturva.discovery.judge import Judgement, Proposal, judge
from riskiturva.discovery.sweep import ping_sweep
from riskiturva.dns_seam import DnsClient
from riskiturva.inventory import record_change
from riskiturva.models import (
    Asset,
    AssetEvidence,
    AssetOrigin,
    AssetState,
    ChangeKind,
    Organisation,
    RunStatus,
    ScanError,
    ScanRun,
    ScopeSighting,
    SubjectState,
)
from riskiturva.runner import UNSAVED_RECORD_BUDGET_S, unsaved_outcomes
from riskiturva.store import sync_config

COLLECTOR = "discovery"
AUTO_ACCEPT_ACTOR = "auto-accept"
_NAME_KINDS = (AssetKind.DOMAIN, AssetKind.MAIL_DOMAIN, AssetKind.HOST)


def word_list() -> tuple[str, ...]:
    """The built-in labels (`wordlist.txt`)."""
    text = (resources.files("riskiturva.discovery") / "wordlist.txt").read_text()
    lines = (line.strip().lower() for line in text.splitlines())
    return tuple(dict.fromkeys(line for line in lines if line and not line.startswith("#")))


@dataclass
class OrganisationCounts:
    proposed: int = 0  # new proposals this run
    auto_accepted: int = 0
    seen_again: int = 0  # proposals or assets seen again
    outside_scope: int = 0  # new sightings outside scope
    gone: int = 0  # retirement proposed this run
    returned: int = 0
    certificates_new: int = 0
    wildcard_answers: int = 0


@dataclass
class DiscoveryReport:
    run_id: int
    status: RunStatus
    organisations: dict[str, OrganisationCounts] = field(default_factory=dict)
    queries: int = 0
    errors: int = 0
    duration_s: float = 0.0
    message: str | None = None
    store_error: StoreWriteError | None = None  # set when the results could not be saved

    def as_dict(self) -> dict[str, Any]:
        totals: Counter[str] = Counter()
        for counts in self.organisations.values():
            totals.update(vars(counts))
        return {
            **dict(totals),
            "queries": self.queries,
            "errors": self.errors,
            "duration_s": round(self.duration_s, 3),
            "organisations": {slug: vars(c) for slug, c in self.organisations.items()},
        }


# --- planning --------------------------------------------------------------------------


def _name_of(asset: Asset) -> str | None:
    if asset.kind == AssetKind.URL:
        return clean_name(urlsplit(asset.value).hostname or "")
    return asset.value if asset.kind in _NAME_KINDS else None


def _partner_labels(session: Session, config: Config, slug: str) -> tuple[str, ...]:
    """First labels of the active host names of the partner's other organisations."""
    others = {o for p in config.partners if slug in p.organisations for o in p.organisations}
    others.discard(slug)
    if not others:
        return ()
    rows = session.execute(
        select(Asset.kind, Asset.value)
        .join(Organisation)
        .where(Organisation.slug.in_(sorted(others)), Asset.active)
    )
    labels = {
        value.split(".")[0] for kind, value in rows if kind == AssetKind.HOST and "." in value
    }
    return tuple(sorted(label for label in labels if clean_name(f"{label}.x") is not None))


def _observed(session: Session, org_id: int, collector: str) -> list[tuple[str, Any]]:
    return list(
        session.execute(
            select(SubjectState.subject, SubjectState.last_observation).where(
                SubjectState.organisation_id == org_id,
                SubjectState.collector == collector,
                SubjectState.last_observation.is_not(None),
            )
        )
    )


def _certificate_names(session: Session, org_id: int) -> list[tuple[str, str]]:
    found = []
    for subject, facts in _observed(session, org_id, "tls"):
        certificate = (facts or {}).get("certificate") or {}
        for name in certificate.get("dns_names") or ():
            found.append((str(name), f"certificate of {subject}"))
    return found


def _web_names(
    session: Session, org_id: int, psl: PublicSuffixList
) -> list[tuple[str, str, Source]]:
    """Names in redirects and links the web collector saw, on the page's registrable domain."""
    found: list[tuple[str, str, Source]] = []
    for subject, facts in _observed(session, org_id, "web"):
        site = psl.privatesuffix(subject) or subject
        for scheme in ("https", "http"):
            fetched = (facts or {}).get(scheme) or {}
            for answer in fetched.get("answers") or ():
                for header, value in answer.get("headers") or ():
                    if header == "location":
                        host = urlsplit(str(value)).hostname
                        if host:
                            found.append(
                                (host, f"redirect on {answer.get('url')}", Source.WEB_REDIRECT)
                            )
            for link in fetched.get("links") or ():
                found.append((str(link), f"link on {scheme}://{subject}/", Source.WEB_LINK))
    return [(n, v, s) for n, v, s in found if (psl.privatesuffix(n.lower()) or n.lower()) == site]


def _networks(org: OrgConfig, assets: Iterable[Asset]) -> tuple[str, ...]:
    declared = [*org.scope.networks]
    declared += [ipaddress.ip_network(a.value) for a in assets if a.kind == AssetKind.NETWORK]
    unique: list[Any] = []
    for net in sorted(set(declared), key=lambda n: (n.version, n.prefixlen)):
        if not any(net.version == u.version and net.subnet_of(u) for u in unique):
            unique.append(net)
    return tuple(str(n) for n in unique)


def plan_for(
    session: Session, config: Config, org: OrgConfig, labels: tuple[str, ...], psl: PublicSuffixList
) -> Plan:
    org_row = session.scalar(select(Organisation).where(Organisation.slug == org.slug))
    assert org_row is not None
    active = [
        a
        for a in session.scalars(select(Asset).where(Asset.organisation_id == org_row.id))
        if a.active
    ]
    networks = _networks(org, active)
    return Plan(
        organisation=org.slug,
        scope=org.scope,
        sources=frozenset(config.settings.discovery.sources),
        zones=org.scope.domains,
        known_names=tuple(
            sorted({n for a in active if (n := _name_of(a)) and org.scope.covers_name(n)})
        ),
        labels=labels,
        partner_labels=_partner_labels(session, config, org.slug),
        certificate_names=tuple(_certificate_names(session, org_row.id)),
        web_names=tuple(_web_names(session, org_row.id, psl)),
        ptr_networks=networks,
        sweep_networks=networks,
    )


# --- applying --------------------------------------------------------------------------


def _evidence_rows(asset: Asset, proposal: Proposal, run_id: int, now: dt.datetime) -> None:
    rows = {(e.source, e.via): e for e in asset.evidence}
    for evidence in proposal.evidence:
        row = rows.get((evidence.source, evidence.via))
        if row is None:
            row = AssetEvidence(source=evidence.source, via=evidence.via[:500], first_seen=now)
            asset.evidence.append(row)
            rows[(evidence.source, evidence.via)] = row
        row.detail = {**dict(evidence.detail), "addresses": list(proposal.addresses)}
        row.last_seen, row.last_run_id = now, run_id


def _auto_accept(org: OrgConfig, proposal: Proposal) -> tuple[int, Any] | None:
    for index, rule in enumerate(org.discovery.auto_accept):
        if proposal.kind not in rule.kinds:
            continue
        if rule.sources and not proposal.sources & set(rule.sources):
            continue
        networks = rule.networks or org.scope.networks
        addresses = [ipaddress.ip_address(a) for a in proposal.addresses]
        if proposal.kind in (AssetKind.HOST, AssetKind.IP) and not addresses:
            continue
        if all(any(a in n for n in networks) for a in addresses):
            return index, rule
    return None


def _alerted(asset: Asset, proposal: Proposal) -> ProposedAsset:
    return ProposedAsset(
        kind=asset.kind,
        value=asset.value,
        source=", ".join(sorted(proposal.sources)),
        evidence={"addresses": list(proposal.addresses)},
    )


def _apply(
    session: Session,
    org: OrgConfig,
    org_row: Organisation,
    judgement: Judgement,
    observations: Observations,
    *,
    run_id: int,
    now: dt.datetime,
    gone_after: int,
    proposed: list[ProposedAsset],
) -> OrganisationCounts:
    """Apply one organisation's judgement; the assets newly waiting for a decision are
    appended to `proposed` (for the alerts)."""
    counts = OrganisationCounts(wildcard_answers=judgement.wildcard_answers)

    def changed(kind: ChangeKind, asset: Asset, detail: dict[str, Any]) -> None:
        record_change(
            session,
            organisation_id=org_row.id,
            kind=kind,
            subject=asset.value,
            at=now,
            asset_id=asset.id,
            run_id=run_id,
            detail=detail,
        )

    assets = list(session.scalars(select(Asset).where(Asset.organisation_id == org_row.id)))
    by_key = {(a.kind, a.value): a for a in assets}
    by_name: dict[str, Asset] = {}
    for asset in assets:
        name = _name_of(asset)
        if name and asset.state != AssetState.REJECTED:
            by_name.setdefault(name, asset)
    for proposal in judgement.proposals:
        known = by_key.get((proposal.kind, proposal.value)) or by_name.get(proposal.value)
        if known is None:
            asset = Asset(
                organisation_id=org_row.id,
                kind=proposal.kind,
                value=proposal.value,
                criticality="medium",
                tags=[],
                dkim_selectors=[],
                origin=AssetOrigin.DISCOVERED,
                state=AssetState.PROPOSED,
                first_seen=now,
                last_seen=now,
                gone_runs=0,
            )
            session.add(asset)
            session.flush()
            by_key[(asset.kind, asset.value)] = asset
            counts.proposed += 1
            _evidence_rows(asset, proposal, run_id, now)
            changed(
                ChangeKind.ASSET_PROPOSED,
                asset,
                {
                    "kind": asset.kind,
                    "sources": sorted(proposal.sources),
                    "addresses": list(proposal.addresses),
                },
            )
            rule = _auto_accept(org, proposal)
            if rule is not None:
                _accept_by_rule(session, org, asset, rule, now=now)
                counts.auto_accepted += 1
            else:
                proposed.append(_alerted(asset, proposal))
            continue
        asset = known
        counts.seen_again += 1
        asset.last_seen = now
        _evidence_rows(asset, proposal, run_id, now)
        if asset.state == AssetState.RETIRED and asset.origin == AssetOrigin.DISCOVERED:
            asset.state = AssetState.PROPOSED
            asset.state_changed_at, asset.state_changed_by = now, COLLECTOR
            asset.state_reason = "seen again after retirement"
            changed(ChangeKind.ASSET_PROPOSED, asset, {"kind": asset.kind, "again": True})
            proposed.append(_alerted(asset, proposal))
    counts.outside_scope = _record_outside(session, org_row.id, judgement, run_id=run_id, now=now)
    gone, present = set(judgement.gone), set(judgement.present)
    for asset in assets:
        name = _name_of(asset)
        if not asset.active or name is None:
            continue
        if name in gone:
            asset.gone_runs += 1
            if asset.gone_runs >= gone_after and asset.retirement_proposed_at is None:
                asset.retirement_proposed_at = now
                counts.gone += 1
                changed(
                    ChangeKind.ASSET_GONE,
                    asset,
                    {"kind": asset.kind, "nxdomain_runs": asset.gone_runs},
                )
        elif name in present:
            if asset.retirement_proposed_at is not None:
                counts.returned += 1
                changed(ChangeKind.ASSET_RETURNED, asset, {"kind": asset.kind})
            asset.gone_runs, asset.retirement_proposed_at = 0, None
    counts.certificates_new = _record_certificates(
        session, org_row.id, observations, run_id=run_id, now=now
    )
    _record_zones(session, org_row.id, observations, run_id=run_id, now=now)
    if counts.auto_accepted:
        session.flush()
        refresh_current_score(session, org_row.id, now=now)
    return counts


def _accept_by_rule(
    session: Session, org: OrgConfig, asset: Asset, rule: tuple[int, Any], *, now: dt.datetime
) -> None:
    index, settings = rule
    asset.state = AssetState.ACTIVE
    asset.criticality, asset.tags = str(settings.criticality), sorted(settings.tags)
    reason = f"auto_accept rule {index + 1} of {org.slug}"
    asset.state_changed_at, asset.state_changed_by, asset.state_reason = (
        now,
        AUTO_ACCEPT_ACTOR,
        reason,
    )
    record_change(
        session,
        organisation_id=asset.organisation_id,
        kind=ChangeKind.ASSET_ACCEPTED,
        subject=asset.value,
        at=now,
        asset_id=asset.id,
        actor=AUTO_ACCEPT_ACTOR,
        detail={"kind": asset.kind, "rule": index + 1},
    )
    audit(
        session,
        actor=AUTO_ACCEPT_ACTOR,
        action=str(ChangeKind.ASSET_ACCEPTED),
        now=now,
        organisation=org.slug,
        target=f"{asset.kind} {asset.value}"[:200],
        detail={"asset_id": asset.id, "rule": index + 1},
        note=reason,
    )


def _record_outside(
    session: Session, org_id: int, judgement: Judgement, *, run_id: int, now: dt.datetime
) -> int:
    rows = {
        (s.value, s.source, s.via): s
        for s in session.scalars(
            select(ScopeSighting).where(ScopeSighting.organisation_id == org_id)
        )
    }
    known_values = {value for value, _, _ in rows}
    new_values = 0
    for seen in judgement.outside:
        key = (seen.value[:500], str(seen.source), seen.via[:500])
        row = rows.get(key)
        if row is None:
            row = ScopeSighting(
                organisation_id=org_id,
                value=key[0],
                kind=seen.kind,
                source=key[1],
                via=key[2],
                first_seen=now,
            )
            session.add(row)
            rows[key] = row
            if seen.value not in known_values:
                known_values.add(seen.value)
                new_values += 1
                record_change(
                    session,
                    organisation_id=org_id,
                    kind=ChangeKind.SEEN_OUTSIDE_SCOPE,
                    subject=key[0],
                    at=now,
                    run_id=run_id,
                    detail={"kind": seen.kind, "source": key[1], "via": key[2]},
                )
        row.detail, row.last_seen, row.last_run_id = dict(seen.detail), now, run_id
    return new_values


def _state(
    session: Session, org_id: int, subject: str, run_id: int, now: dt.datetime
) -> SubjectState:
    state = session.scalar(
        select(SubjectState).where(
            SubjectState.organisation_id == org_id,
            SubjectState.collector == COLLECTOR,
            SubjectState.subject == subject,
        )
    )
    if state is None:
        state = SubjectState(organisation_id=org_id, collector=COLLECTOR, subject=subject)
        session.add(state)
    state.asset, state.last_status, state.last_error = subject.split(":", 1)[-1], "ok", None
    state.last_scanned_at = state.last_success_at = now
    state.last_run_id = run_id
    return state


def _record_certificates(
    session: Session, org_id: int, observations: Observations, *, run_id: int, now: dt.datetime
) -> int:
    """CT entries not seen before are new certificates (the first search sets the baseline)."""
    new = 0
    for domain, entries in observations.certificates.items():
        state = _state(session, org_id, f"ct:{domain}", run_id, now)
        baseline = (state.last_observation or {}).get("ids")
        ids = sorted(e.id for e in entries)
        if baseline is not None:
            known = set(baseline)
            for entry in entries:
                if entry.id not in known:
                    new += 1
                    record_change(
                        session,
                        organisation_id=org_id,
                        kind=ChangeKind.CERTIFICATE_NEW,
                        subject=domain,
                        at=now,
                        run_id=run_id,
                        detail={
                            "source": "ct",
                            "ct_id": entry.id,
                            "names": list(entry.names),
                            "issuer": entry.issuer,
                            "not_before": entry.not_before,
                            "not_after": entry.not_after,
                        },
                    )
        state.last_observation = {"ids": sorted(set(ids) | set(baseline or ()))}
    return new


def _record_zones(
    session: Session, org_id: int, observations: Observations, *, run_id: int, now: dt.datetime
) -> None:
    """Each zone's latest facts and the services its TXT records name (shown, not scanned)."""
    for zone in observations.zones:
        state = _state(session, org_id, f"zone:{zone.zone}", run_id, now)
        state.last_observation = {
            "zone": zone.zone, "walk": zone.walk, "axfr": zone.axfr,
            "wildcard": list(zone.wildcard), "labels_tried": zone.labels_tried,
            "services": [{"service": h.service, "record": h.record}
                         for h in observations.hints if h.domain == zone.zone],
        }  # fmt: skip


# --- the run ---------------------------------------------------------------------------


def run_discovery(
    sessions: sessionmaker[Session],
    config: Config,
    *,
    organisations: Iterable[str] | None = None,
    context: ScanContext,
    trigger: str = "cli",
    scheduled_for: dt.datetime | None = None,
    sweep: Callable[[str], list[str]] | None = ping_sweep,
) -> DiscoveryReport:
    """Discover for the selected organisations (those with discovery enabled).

    The start and the final write are transactions retried like a scan's
    (`settings.write_retry_seconds`); when the results cannot be saved, the run is recorded
    failed with the cause (`store_error`) and nothing was proposed.
    """
    wanted = set(organisations) if organisations is not None else None
    selected = [
        o
        for o in config.organisations
        if (wanted is None or o.slug in wanted) and o.discovery.enabled
    ]
    settings = config.settings.discovery
    budget = config.settings.write_retry_seconds
    started = context.clock()
    labels = tuple(dict.fromkeys((*word_list(), *settings.extra_labels)))
    psl = PublicSuffixList()

    def start(session: Session) -> tuple[int, list[Plan]]:
        unsaved_outcomes.write_pending(session)
        sync_config(session, config, now=started)
        plans = [plan_for(session, config, o, labels, psl) for o in selected]
        run = ScanRun(
            collector=COLLECTOR,
            organisations=[o.slug for o in selected],
            trigger=trigger,
            scheduled_for=scheduled_for,
            status=RunStatus.RUNNING,
            started_at=started,
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        session.add(run)
        session.flush()
        return run.id, plans

    run_id, plans = write_with_retry(sessions, start, what="start a discovery run", budget_s=budget)
    report = DiscoveryReport(run_id, RunStatus.RUNNING)
    search = None
    if DiscoverySource.CT in settings.sources:
        search = certificate_log(
            settings.ct, context.resolver.addresses, config.settings.user_agent
        ).search

    async def gather_all() -> tuple[list[Observations], int]:
        client = DnsClient(
            config.settings.resolver, _nameserver_port(config), settings.dns_in_flight
        )
        found = await asyncio.gather(
            *(
                gather_observations(
                    p,
                    client,
                    settings,
                    now=started,
                    search_ct=search,
                    sweep=sweep,
                    cancelled=context.cancelled.is_set,
                )
                for p in plans
            )
        )
        return list(found), client.sent

    failure: BaseException | None = None
    observations: list[Observations] = []
    try:
        observations, report.queries = asyncio.run(gather_all())
        if context.cancelled.is_set():
            raise InterruptedError("discovery cancelled")
    except BaseException as exc:
        failure = exc
    finished = context.clock()
    report.duration_s = (finished - started).total_seconds()
    if failure is None:
        report.errors = sum(len(seen.errors) for seen in observations)
        report.status = RunStatus.PARTIAL if report.errors else RunStatus.OK
    elif isinstance(failure, InterruptedError | KeyboardInterrupt):
        report.status = RunStatus.INTERRUPTED
        report.message = "interrupted before the run finished; nothing was proposed"
    else:
        report.status = RunStatus.FAILED
        report.message = "".join(traceback.format_exception_only(failure)).strip()
    by_slug = {o.slug: o for o in selected}

    def write(session: Session) -> None:
        # Built from scratch on every attempt: a retried write must not count twice.
        report.organisations = {}
        # Take the write lock first (SQLite), and the organisations' rows (PostgreSQL):
        # discovery runs of the same organisations apply their proposals in turn.
        session.execute(update(ScanRun).where(ScanRun.id == run_id).values(finished_at=finished))
        session.scalars(
            select(Organisation)
            .where(Organisation.slug.in_(sorted(by_slug)))
            .order_by(Organisation.id)
            .with_for_update()
        ).all()
        run = session.get(ScanRun, run_id)
        assert run is not None
        if failure is None:
            for plan, seen in zip(plans, observations, strict=True):
                org_row = session.scalar(
                    select(Organisation).where(Organisation.slug == plan.organisation)
                )
                assert org_row is not None
                judgement = judge(seen, plan.scope, plan.known_names)
                proposed: list[ProposedAsset] = []
                report.organisations[plan.organisation] = _apply(
                    session,
                    by_slug[plan.organisation],
                    org_row,
                    judgement,
                    seen,
                    run_id=run_id,
                    now=finished,
                    gone_after=settings.gone_after_runs,
                    proposed=proposed,
                )
                # In the same transaction: a proposal and its alert are written together.
                record_proposals(session, config, org_row, proposed, now=finished)
                for error in seen.errors:
                    session.add(
                        ScanError(
                            run_id=run_id,
                            organisation_id=org_row.id,
                            subject=plan.organisation,
                            asset="discovery",
                            kind="dns_failure",
                            message=error[:2000],
                        )
                    )
        _close(run)

    def _close(run: ScanRun) -> None:
        run.status, run.finished_at = report.status, finished
        run.counts, run.message = report.as_dict(), report.message

    try:
        write_with_retry(
            sessions, write, what=f"save the results of discovery run {run_id}", budget_s=budget
        )
    except StoreWriteError as error:
        report.organisations = {}
        report.status, report.message, report.store_error = RunStatus.FAILED, str(error), error

        def close(session: Session) -> None:
            run = session.get(ScanRun, run_id)
            assert run is not None
            _close(run)

        try:
            write_with_retry(
                sessions,
                close,
                what=f"record discovery run {run_id} as failed",
                budget_s=min(budget, UNSAVED_RECORD_BUDGET_S),
            )
        except StoreWriteError:
            unsaved_outcomes.keep(report, finished)  # written by this process's next run
    if isinstance(failure, KeyboardInterrupt | SystemExit):
        raise failure
    return report


def _nameserver_port(config: Config) -> int:
    """Where authoritative nameservers are asked directly (AXFR): the DNS collector's option."""
    options = config.settings.collectors.get("dns_email")
    return int(getattr(options, "nameserver_port", 53))


__all__ = ["COLLECTOR", "DiscoveryReport", "run_discovery", "word_list"]
