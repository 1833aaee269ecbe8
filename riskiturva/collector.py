"""The contract between the runner and a collector.

A collector is one package under `collectors/` registered in the `riskiturva.collectors`
entry-point group. It *gathers* (`collect`: targets in, typed observations out, errors as
data) and its pure rules *judge* (`judge`: one observation in, finding drafts out). It knows
nothing of the database or the dashboard.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import ipaddress
import ssl
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

import dns.exception

from riskiturva.config import AssetKind, CollectorOptions, Settings
from riskiturva.intel.software import SoftwareSighting
from riskiturva.politeness import Politeness
from riskiturva.resolver import Resolver
from riskiturva.scope import ScopeGuard

if TYPE_CHECKING:
    from riskiturva.intel.snapshot import IntelSnapshot

ENTRY_POINT_GROUP = "riskiturva.collectors"


class ErrorKind(enum.StrEnum):
    """Why a target could not be checked. None of these is ever a finding."""

    TIMEOUT = "timeout"
    REFUSED = "refused"
    RESET = "reset"  # the connection was accepted, then torn down (RST, abort, broken pipe)
    UNREACHABLE = "unreachable"
    DNS_FAILURE = "dns_failure"
    OUT_OF_SCOPE = "out_of_scope"
    PROTOCOL = "protocol"
    INTERNAL = "internal"
    CANCELLED = "cancelled"


class SubjectStatus(enum.StrEnum):
    OK = "ok"  # scanned completely: findings not seen on it are resolved
    PARTIAL = "partial"  # some checks ran: findings seen are recorded, none resolved
    ERROR = "error"  # nothing could be checked


@dataclass(frozen=True)
class Target:
    """One thing to scan, already resolved and inside the organisation's scope."""

    asset: str
    asset_kind: AssetKind
    name: str | None = None  # DNS name: SNI and Host header
    address: str | None = None  # where to connect (an IP, or a network for kind `network`)
    url: str | None = None
    dkim_selectors: tuple[str, ...] = ()  # mail domains: the selectors the owner declared

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = to_jsonable(self)
        return plain

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Target:
        return cls(
            **{
                **data,
                "asset_kind": AssetKind(data["asset_kind"]),
                "dkim_selectors": tuple(data.get("dkim_selectors", ())),
            }
        )


@dataclass(frozen=True)
class ScanTask:
    """A small serialisable unit of work: one organisation, one collector, a batch of targets."""

    run_id: int
    organisation: str
    collector: str
    targets: tuple[Target, ...]
    # The last successful observation per subject, for change detection (JSON form).
    previous: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = to_jsonable(self)
        return plain

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScanTask:
        return cls(
            run_id=data["run_id"],
            organisation=data["organisation"],
            collector=data["collector"],
            targets=tuple(Target.from_dict(t) for t in data["targets"]),
            previous=dict(data.get("previous", {})),
        )


@dataclass(frozen=True)
class TargetError:
    kind: ErrorKind
    message: str


Failure = BaseException | traceback.TracebackException
# Underlying causes. An SSLError is an OSError: it comes before the plain OSError, which
# (no route, network down, address not available) counts only when nothing else does.
_CAUSES: tuple[tuple[type[BaseException], ErrorKind], ...] = (
    (TimeoutError, ErrorKind.TIMEOUT),  # socket.timeout is TimeoutError
    (dns.exception.Timeout, ErrorKind.TIMEOUT),
    (ConnectionRefusedError, ErrorKind.REFUSED),
    (ConnectionResetError, ErrorKind.RESET),
    (ConnectionAbortedError, ErrorKind.RESET),
    (BrokenPipeError, ErrorKind.RESET),
    (ssl.SSLError, ErrorKind.PROTOCOL),
)


def _chain(failure: Failure) -> list[tuple[type[BaseException], Failure]]:
    """(type, link) for `failure` and every exception it was raised from or during."""
    links: list[tuple[type[BaseException], Failure]] = []
    seen: set[int] = set()
    current: Failure | None = failure
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = (
            current.exc_type
            if isinstance(current, traceback.TracebackException)
            else (type(current))
        )
        if kind is not None:
            links.append((kind, current))
        if not isinstance(current, traceback.TracebackException):
            # urllib3 and others also pass the socket error as an argument.
            links += [(type(a), a) for a in current.args if isinstance(a, BaseException)]
        current = current.__cause__ or current.__context__
    return links


def error_kind(failure: Failure, default: ErrorKind = ErrorKind.PROTOCOL) -> ErrorKind:
    """Why a connection failed, read from its cause, the same way in every collector.

    Libraries wrap socket errors in their own (sslyze's `ServerRejectedConnection` raised
    while handling a `ConnectionResetError`, urllib3's `NewConnectionError` from a refusal):
    the outermost known cause in the chain decides, a plain `OSError` only when there is no
    other. `failure` may be an exception or a captured `TracebackException` (sslyze keeps
    those). With no known cause: `default`.
    """
    links = [link_type for link_type, _ in _chain(failure)]
    for link_type in links:
        for cause, kind in _CAUSES:
            if issubclass(link_type, cause):
                return kind
    if any(issubclass(link_type, OSError) for link_type in links):
        return ErrorKind.UNREACHABLE
    return default


@dataclass(frozen=True)
class SubjectObservation:
    """What a collector saw on one subject (`www.kunta.fi:443`, `kunta.fi`, `192.0.2.7`)."""

    subject: str
    asset: str
    status: SubjectStatus
    facts: Any = None  # the collector's own typed observation (a frozen dataclass)
    error: TargetError | None = None


@dataclass(frozen=True)
class FindingDraft:
    """A rule's verdict: a check id, what it is about, and structured evidence."""

    check_id: str
    evidence: Mapping[str, Any]
    subject: str | None = None  # defaults to the observation's subject
    reproduce: str | None = None  # a command a person can paste to see it themselves


@dataclass(frozen=True)
class ChangeDraft:
    """A change a collector noticed against the previous scan (`service.port_opened`,
    `certificate.new`): stored as a change event for "what changed" and the alerts."""

    kind: str
    subject: str
    detail: Mapping[str, Any] = field(default_factory=dict)


OptionsT = TypeVar("OptionsT", bound=CollectorOptions)
Facts = TypeVar("Facts")


class UndeclaredCheckError(RuntimeError):
    """A rule emitted a check id that its rule table does not declare (a bug in the rule)."""


@dataclass(frozen=True)
class Rule(Generic[Facts]):
    """One pure rule and every check id it may emit."""

    judge: Callable[[Facts], Iterable[FindingDraft]]
    emits: frozenset[str]


@dataclass(frozen=True)
class RuleSet(Generic[Facts]):
    """A collector's rules. Its `check_ids` are what the rules declare, never a second list;
    a rule that emits an id it did not declare raises instead of passing it on."""

    rules: tuple[Rule[Facts], ...]

    @property
    def check_ids(self) -> frozenset[str]:
        return frozenset().union(*(rule.emits for rule in self.rules))

    def judge(self, facts: Facts) -> list[FindingDraft]:
        drafts = []
        for rule in self.rules:
            for draft in rule.judge(facts):
                if draft.check_id not in rule.emits:
                    raise UndeclaredCheckError(
                        f"{rule.judge.__qualname__} emitted {draft.check_id!r}, which it does"
                        " not declare"
                    )
                drafts.append(draft)
        return drafts


@dataclass
class ScanContext:
    """Everything a collector may use, passed in rather than read from globals."""

    settings: Settings
    resolver: Resolver
    scope: ScopeGuard
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    cancelled: threading.Event = field(default_factory=threading.Event)
    # The vulnerability intelligence the rules judge identified software with (dated; None
    # when the scan has no store to read it from). See riskiturva/intel/snapshot.py.
    intel: IntelSnapshot | None = None
    # Connections per address and network, new connections per second: shared by every
    # collector of the process (riskiturva/politeness.py); built from the settings.
    politeness: Politeness | None = None

    def __post_init__(self) -> None:
        if self.politeness is None:
            self.politeness = Politeness(self.settings.politeness)

    @property
    def limits(self) -> Politeness:
        """The process's politeness limiter (see riskiturva/politeness.py)."""
        assert self.politeness is not None  # set in __post_init__
        return self.politeness

    @property
    def trusted_ca_files(self) -> tuple[Path, ...]:
        return self.settings.tls.extra_ca_files

    def options(self, collector: str, model: type[OptionsT]) -> OptionsT:
        """The collector's options, validated with the configuration; defaults when unset."""
        value = self.settings.collectors.get(collector)
        if isinstance(value, model):
            return value
        # Settings built in code (tests, benchmarks) may hold a plain table.
        return model.model_validate(value or {})


@runtime_checkable
class Collector(Protocol):
    name: ClassVar[str]
    # The asset kinds this collector scans.
    asset_kinds: ClassVar[frozenset[AssetKind]]
    # Of those, the kinds whose names the runner resolves: one target per in-scope address.
    # Other names reach the collector unresolved; it must pass any address it finds itself
    # (an MX host, a nameserver) through `context.scope` before sending it anything.
    address_kinds: ClassVar[frozenset[AssetKind]]
    # Every check id the rules can emit (a test ties these to the registry).
    check_ids: ClassVar[frozenset[str]]
    # `[settings.collectors.<name>]`, validated by `riskiturva config check` like the rest.
    options_model: ClassVar[type[CollectorOptions]]
    # What the collector checks on each asset kind it takes (ports included), for the
    # generated docs/configuration.md.
    coverage: ClassVar[Mapping[AssetKind, str]]

    def collect(self, task: ScanTask, context: ScanContext) -> Iterable[SubjectObservation]:
        """Scan the task's targets; yield one observation per subject, errors included."""
        ...

    def judge(self, observation: SubjectObservation) -> list[FindingDraft]:
        """Pure rules: turn one successful observation into finding drafts."""
        ...


def noticed_changes(
    collector: Collector, previous: Mapping[str, Any] | None, observation: SubjectObservation
) -> list[ChangeDraft]:
    """The collector's optional `changes(previous, observation)`: pure, like `judge`; the
    previous successful observation of the subject comes in its stored JSON form."""
    changes = getattr(collector, "changes", None)
    return list(changes(previous, observation)) if changes is not None else []


@runtime_checkable
class IdentifiesSoftware(Protocol):
    """A collector whose observations name software (products and versions).

    The runner judges that software with the vulnerability rules (riskiturva/intel/rules.py)
    and the intelligence in the scan context; the collector only says what it saw.
    """

    def software(self, observation: SubjectObservation) -> list[SoftwareSighting]:
        """The software one successful observation identified, with its subjects."""
        ...


class CollectorLoadError(RuntimeError):
    """A registered collector could not be imported."""


def collector_classes() -> dict[str, type[Collector]]:
    """Every collector class registered in the `riskiturva.collectors` group, by name."""
    found: dict[str, type[Collector]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            factory = entry.load()
        except Exception as exc:
            raise CollectorLoadError(f"collector {entry.name!r} failed to load: {exc}") from exc
        options = getattr(factory, "options_model", None)
        if not (isinstance(options, type) and issubclass(options, CollectorOptions)):
            raise CollectorLoadError(
                f"collector {entry.name!r} declares no options_model (a CollectorOptions model)"
            )
        found[entry.name] = factory
    return dict(sorted(found.items()))


def discover_collectors() -> dict[str, Collector]:
    """Instantiate every collector registered in the `riskiturva.collectors` group."""
    return {name: factory() for name, factory in collector_classes().items()}


def to_jsonable(value: Any) -> Any:
    """Plain JSON types from dataclasses, enums, dates, addresses, paths, sets and bytes."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(to_jsonable(v) for v in value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, Path | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
