"""Judging: one organisation's observations → proposals with their evidence (pure).

A host is proposed when it resolves to at least one address inside the declared networks;
its addresses outside them, and CNAME targets outside the declared domains, are listed as
seen outside scope. A name only guessed (word list, partner labels) counts only when its
answer differs from the zone's wildcard. A PTR name counts only when it resolves back to
the address (forward-confirmed). Zone cuts are proposed as domains, names holding only
MX records as mail domains, live addresses of a ping sweep as IPs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from riskiturva.config import Scope, name_within
from riskiturva.discovery.facts import (
    GUESSES,
    Observations,
    OutsideSighting,
    Resolution,
    ServiceHint,
    Sighting,
    Source,
    ZoneFacts,
)


@dataclass(frozen=True)
class Evidence:
    source: str
    via: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Proposal:
    kind: str  # host, domain, mail_domain or ip
    value: str
    evidence: tuple[Evidence, ...]
    addresses: tuple[str, ...] = ()  # in-scope addresses it resolves to

    @property
    def sources(self) -> frozenset[str]:
        return frozenset(e.source for e in self.evidence)


@dataclass(frozen=True)
class Judgement:
    proposals: tuple[Proposal, ...]
    outside: tuple[OutsideSighting, ...]
    gone: tuple[str, ...]  # known names that do not exist (NXDOMAIN) this run
    present: tuple[str, ...]  # known names that exist this run
    hints: tuple[ServiceHint, ...]
    wildcard_answers: int = 0  # guesses dropped because only a wildcard answered them


def _zone_of(name: str, zones: Iterable[ZoneFacts]) -> ZoneFacts | None:
    enclosing = [z for z in zones if name_within(name, z.zone)]
    return max(enclosing, key=lambda z: len(z.zone)) if enclosing else None


def _leaving_cnames(resolution: Resolution, scope: Scope) -> list[OutsideSighting]:
    out = []
    for step in resolution.cnames:
        owner, _, target = step.partition(" CNAME ")
        target = target.rstrip(".").lower()
        if target and not scope.covers_name(target):
            out.append(OutsideSighting(target, "name", Source.CNAME, f"CNAME of {owner}"))
    return out


def _evidence(sightings: Iterable[Sighting]) -> tuple[Evidence, ...]:
    unique = {(s.source, s.via): Evidence(str(s.source), s.via, dict(s.detail)) for s in sightings}
    return tuple(unique[k] for k in sorted(unique))


def judge(observations: Observations, scope: Scope, known_names: Iterable[str] = ()) -> Judgement:
    by_key: dict[tuple[str, str], list[Sighting]] = {}
    for sighting in observations.sightings:
        by_key.setdefault((sighting.kind, sighting.name), []).append(sighting)
    proposals: list[Proposal] = []
    outside = list(observations.outside)
    wildcard_answers = 0
    for (kind, name), sightings in sorted(by_key.items()):
        resolution = observations.resolutions.get(name) or Resolution(name, failed="not resolved")
        if kind in ("domain", "mail_domain"):
            proposals.append(Proposal(kind, name, _evidence(sightings)))
            continue
        outside += _leaving_cnames(resolution, scope)
        if resolution.failed or not resolution.addresses:
            continue
        confirmed = [
            s
            for s in sightings
            if s.source is not Source.PTR or s.detail.get("address") in resolution.addresses
        ]
        if not confirmed:
            continue  # a stale PTR: the name does not point back at the address
        if all(s.source in GUESSES for s in confirmed):
            zone = _zone_of(name, observations.zones)
            if zone and zone.wildcard and set(resolution.addresses) <= set(zone.wildcard):
                wildcard_answers += 1
                continue
        inside = tuple(a for a in resolution.addresses if scope.covers_address(a))
        outside += [
            OutsideSighting(a, "address", Source.ADDRESS, f"address of {name}")
            for a in resolution.addresses
            if a not in inside
        ]
        if inside:
            proposals.append(Proposal("host", name, _evidence(confirmed), inside))
    sweeps: dict[str, list[Sighting]] = {}
    for seen in observations.addresses:
        if seen.source is Source.PING_SWEEP:
            sweeps.setdefault(seen.address, []).append(
                Sighting(seen.address, seen.source, seen.via, "ip")
            )
    for address, sightings in sorted(sweeps.items()):
        proposals.append(Proposal("ip", address, _evidence(sightings), (address,)))
    gone: list[str] = []
    present: list[str] = []
    for name in sorted(set(known_names)):
        known = observations.resolutions.get(name)
        if known is None or known.failed:
            continue
        (gone if known.nxdomain else present).append(name)
        outside += _leaving_cnames(known, scope)
    unique_outside = {(o.value, o.source, o.via): o for o in outside}
    return Judgement(
        proposals=tuple(proposals),
        outside=tuple(unique_outside[k] for k in sorted(unique_outside)),
        gone=tuple(gone),
        present=tuple(present),
        hints=observations.hints,
        wildcard_answers=wildcard_answers,
    )
