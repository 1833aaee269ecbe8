"""Requirement profiles: which checks evidence which Finnish obligations and recommendations.

A profile is versioned data in `riskiturva/requirement_data/<id>.toml`, like the check
registry and the scoring tables: its sources (each with how far we could verify it), and its
requirements, each citing the sections it rests on and listing the checks whose findings
bear on it. An organisation's configuration names the profiles that apply to it
(`requirements = [...]`). `evaluate` turns a profile, the organisation's open findings and
the collectors that checked it into met / not met / not checked per requirement.

A scanner sees only what is visible from the internet, so "met" means "no evidence against
it in what was checked", never "compliant" (docs/requirements.md).
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from urllib.parse import urlsplit

from riskiturva.checks import LANGUAGES, load_registry


class RequirementProfileError(ValueError):
    """A requirement profile is malformed; the message names the file and the key."""


class Verification(StrEnum):
    """How far the source behind a citation was read while the profile was written."""

    TEXT = "text"  # the section's wording (or a faithful quotation of it) was read
    SUMMARY = "summary"  # an official page or a summary describing the section was read
    TITLE = "title"  # only the document and its title were confirmed; the wording was not


class RequirementKind(StrEnum):
    OBLIGATION = "obligation"  # laid down in an act or a regulation
    RECOMMENDATION = "recommendation"  # an authority's recommendation


class RequirementStatus(StrEnum):
    MET = "met"  # every collector concerned checked it, and no open finding speaks against it
    NOT_MET = "not_met"  # an open finding (or an accepted risk) speaks against it
    NOT_CHECKED = "not_checked"  # some collector concerned has not checked the organisation
    NOT_APPLICABLE = "not_applicable"  # the organisation has no asset the profile covers


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    url: str
    verified: Verification
    note: str


@dataclass(frozen=True)
class Citation:
    source: Source
    section: Mapping[str, str]  # fi/sv/en: "13 § 2 mom.", "13 § 2 mom.", "section 13(2)"


@dataclass(frozen=True)
class Requirement:
    id: str  # "<profile>.<local id>", stable: filters and reports refer to it
    profile_id: str
    kind: RequirementKind
    title: Mapping[str, str]
    citations: tuple[Citation, ...]
    checks: tuple[str, ...]

    def title_in(self, language: str) -> str:
        return self.title.get(language) or self.title["en"]

    def sections_in(self, language: str) -> str:
        """The cited sections, for a table cell: "13 § 2 mom.; …"."""
        return "; ".join(c.section.get(language) or c.section["en"] for c in self.citations)


@dataclass(frozen=True)
class Profile:
    id: str
    version: str
    name: Mapping[str, str]
    applies: Mapping[str, str]
    domain_suffixes: tuple[str, ...]  # empty: every asset; else only names under these
    sources: Mapping[str, Source]
    requirements: tuple[Requirement, ...]

    def name_in(self, language: str) -> str:
        return self.name.get(language) or self.name["en"]

    def covers(self, name: str | None) -> bool:
        """True when findings on `name` (a host name, or None for an address) count here."""
        if not self.domain_suffixes:
            return True
        return name is not None and any(
            name == s or name.endswith("." + s) for s in self.domain_suffixes
        )


class Profiles(Mapping[str, Profile]):
    def __init__(self, profiles: Mapping[str, Profile]):
        self._profiles = dict(sorted(profiles.items()))

    def __getitem__(self, profile_id: str) -> Profile:
        return self._profiles[profile_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._profiles)

    def __len__(self) -> int:
        return len(self._profiles)

    def requirement(self, requirement_id: str) -> Requirement:
        profile_id = requirement_id.split(".", 1)[0]
        for requirement in self._profiles[profile_id].requirements:
            if requirement.id == requirement_id:
                return requirement
        raise KeyError(requirement_id)

    def requirements(self, profile_ids: Iterable[str]) -> tuple[Requirement, ...]:
        return tuple(r for p in profile_ids for r in self._profiles[p].requirements)


def _texts(where: str, field: str, value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise RequirementProfileError(f"{where}: {field} must be a table of fi/sv/en texts")
    missing = [lang for lang in LANGUAGES if not str(value.get(lang, "")).strip()]
    if missing:
        raise RequirementProfileError(f"{where}: {field} lacks {', '.join(missing)}")
    return {lang: str(value[lang]).strip() for lang in LANGUAGES}


def _text(where: str, field: str, data: Mapping[str, object]) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value.strip():
        raise RequirementProfileError(f"{where}: {field} must be a non-empty string")
    return value.strip()


def _only(where: str, data: Mapping[str, object], allowed: set[str]) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise RequirementProfileError(f"{where}: unknown keys {sorted(unknown)}")


def _source(where: str, source_id: str, data: object) -> Source:
    where = f"{where}: sources.{source_id}"
    if not isinstance(data, Mapping):
        raise RequirementProfileError(f"{where} must be a table")
    _only(where, data, {"title", "url", "verified", "note"})
    try:
        verified = Verification(str(data.get("verified")))
    except ValueError as exc:
        raise RequirementProfileError(f"{where}: verified: {exc}") from exc
    return Source(
        id=source_id,
        title=_text(where, "title", data),
        url=_text(where, "url", data),
        verified=verified,
        note=_text(where, "note", data),
    )


def parse_profile(profile_id: str, data: Mapping[str, object], source: str) -> Profile:
    """Validate one profile; errors name the file and the key."""
    _only(
        source,
        data,
        {"id", "version", "name", "applies", "domain_suffixes", "sources", "requirements"},
    )
    if data.get("id") != profile_id:
        raise RequirementProfileError(f"{source}: id must be {profile_id!r} (the file's name)")
    sources_data = data.get("sources")
    if not isinstance(sources_data, Mapping) or not sources_data:
        raise RequirementProfileError(f"{source}: sources must name at least one source")
    sources = {sid: _source(source, sid, s) for sid, s in sources_data.items()}
    registry = load_registry()
    requirements: list[Requirement] = []
    items = data.get("requirements")
    if not isinstance(items, list) or not items:
        raise RequirementProfileError(f"{source}: [[requirements]] are missing")
    for index, item in enumerate(items):
        where = f"{source}: requirements[{index}]"
        if not isinstance(item, Mapping):
            raise RequirementProfileError(f"{where} must be a table")
        _only(where, item, {"id", "kind", "title", "cite", "checks"})
        local_id = _text(where, "id", item)
        try:
            kind = RequirementKind(str(item.get("kind")))
        except ValueError as exc:
            raise RequirementProfileError(f"{where}: kind: {exc}") from exc
        cites = item.get("cite")
        if not isinstance(cites, list) or not cites:
            raise RequirementProfileError(f"{where}: cite must name at least one source section")
        citations = []
        for cite in cites:
            if not isinstance(cite, Mapping) or set(cite) != {"source", "section"}:
                raise RequirementProfileError(f"{where}: each cite is {{ source, section }}")
            if cite["source"] not in sources:
                raise RequirementProfileError(f"{where}: unknown source {cite['source']!r}")
            section = _texts(where, "cite.section", cite["section"])
            citations.append(Citation(sources[cite["source"]], section))
        checks = item.get("checks")
        if not isinstance(checks, list) or not checks:
            raise RequirementProfileError(f"{where}: checks must list at least one check id")
        unknown = sorted(set(checks) - set(registry))
        if unknown:
            raise RequirementProfileError(f"{where}: unknown check ids {unknown}")
        requirements.append(
            Requirement(
                id=f"{profile_id}.{local_id}",
                profile_id=profile_id,
                kind=kind,
                title=_texts(where, "title", item.get("title")),
                citations=tuple(citations),
                checks=tuple(checks),
            )
        )
    ids = [r.id for r in requirements]
    if len(set(ids)) != len(ids):
        raise RequirementProfileError(f"{source}: a requirement id is used twice")
    suffixes = data.get("domain_suffixes", [])
    if not isinstance(suffixes, list) or not all(isinstance(s, str) and s for s in suffixes):
        raise RequirementProfileError(f"{source}: domain_suffixes must be a list of names")
    return Profile(
        id=profile_id,
        version=_text(source, "version", data),
        name=_texts(source, "name", data.get("name")),
        applies=_texts(source, "applies", data.get("applies")),
        domain_suffixes=tuple(s.lower().strip(".") for s in suffixes),
        sources=sources,
        requirements=tuple(requirements),
    )


@cache
def load_profiles() -> Profiles:
    """Every `requirement_data/*.toml` shipped with the package (static data, read once)."""
    profiles = {}
    folder = resources.files("riskiturva") / "requirement_data"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            profile_id = entry.name.removesuffix(".toml")
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            profiles[profile_id] = parse_profile(profile_id, data, entry.name)
    return Profiles(profiles)


def host_name_of(asset: str) -> str | None:
    """The DNS name an asset's value is about (a URL's host, or the name itself); None for
    an address or a network, which no domain-suffix profile covers."""
    try:
        ipaddress.ip_network(asset, strict=False)
    except ValueError:
        return (urlsplit(asset).hostname if "://" in asset else asset) or None
    return None


@dataclass(frozen=True)
class Evidence:
    """An open finding as a requirement sees it."""

    check_id: str
    host_name: str | None  # the name the finding's subject is about; None for an address
    accepted: bool  # an accepted risk: a decision, still a gap in what the check evidences


@dataclass(frozen=True)
class RequirementResult:
    requirement: Requirement
    status: RequirementStatus
    findings: int  # open findings speaking against it (accepted risks included)
    accepted: int  # of which accepted risks
    unchecked: tuple[str, ...]  # collectors concerned that did not check the organisation


def evaluate(
    profile: Profile,
    evidence: Iterable[Evidence],
    checked_collectors: Iterable[str],
    collector_of: Mapping[str, str],
    asset_names: Iterable[str | None],
) -> tuple[RequirementResult, ...]:
    """Each requirement of `profile` against an organisation's state at one moment.

    `evidence`: its open findings (false positives left out by the caller);
    `checked_collectors`: collectors that completed a scan of it in the period;
    `collector_of`: check id → the collector that raises it;
    `asset_names`: host names of its assets (None for addresses), for applicability.
    """
    covered = [e for e in evidence if profile.covers(e.host_name)]
    applicable = any(profile.covers(name) for name in asset_names)
    checked = set(checked_collectors)
    results = []
    for requirement in profile.requirements:
        against = [e for e in covered if e.check_id in requirement.checks]
        concerned = sorted({collector_of[c] for c in requirement.checks if c in collector_of})
        unchecked = tuple(c for c in concerned if c not in checked)
        if not applicable:
            status = RequirementStatus.NOT_APPLICABLE
        elif against:
            status = RequirementStatus.NOT_MET
        elif unchecked:
            status = RequirementStatus.NOT_CHECKED
        else:
            status = RequirementStatus.MET
        results.append(
            RequirementResult(
                requirement=requirement,
                status=status,
                findings=len(against),
                accepted=sum(e.accepted for e in against),
                unchecked=unchecked,
            )
        )
    return tuple(results)
