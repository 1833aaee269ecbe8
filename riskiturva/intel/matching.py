"""CPE names and NVD match criteria: which upstream versions a CVE applies to.

CPE 2.3 formatted strings are split with cpematcher's escape-aware splitter; nmap's CPE 2.2
URIs are converted with the `cpe` library. Versions compare in natural order with natsort
(the comparison cpematcher uses: `9.2p1` < `9.8p1`, `2.4.5` < `2.4.49`, `1.0.2` < `1.0.2k`,
trailing `.0` components ignored); the sort keys are computed once per string, so one scan
can test thousands of versions against the criteria of a product. A test holds this to
`cpematcher.core.CPE.matches` on generated cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import natsort
from cpe import CPE as CpeName
from cpematcher.utils import split_cpe_string

CPE23_PREFIX = "cpe:2.3:"
ANY = "*"
NOT_APPLICABLE = "-"
_natural = natsort.natsort_keygen(alg=natsort.ns.INT | natsort.ns.IGNORECASE)

VersionKey = tuple[Any, ...]


class CpeError(ValueError):
    """Not a CPE name this module can read."""


@dataclass(frozen=True, slots=True)
class Cpe:
    """The parts of a CPE name that matching uses."""

    part: str  # "a" application, "o" operating system, "h" hardware
    vendor: str
    product: str
    version: str = ANY
    update: str = ANY

    @property
    def key(self) -> str:
        """`vendor:product`, how the store indexes criteria."""
        return f"{self.vendor}:{self.product}"

    @property
    def full_version(self) -> str:
        """The version with its update part when NVD splits them (`7.4` + `p1` → `7.4p1`)."""
        if self.update in (ANY, NOT_APPLICABLE, ""):
            return self.version
        return f"{self.version}{self.update}"

    def formatted(self) -> str:
        """The CPE 2.3 formatted string."""
        fields = [self.part, self.vendor, self.product, self.version, self.update]
        return CPE23_PREFIX + ":".join(fields + [ANY] * 6)

    def with_version(self, version: str) -> Cpe:
        return Cpe(self.part, self.vendor, self.product, version or ANY)


def parse_cpe(name: str) -> Cpe:
    """A CPE 2.3 formatted string or a CPE 2.2 URI (nmap's `cpe:/a:openbsd:openssh:7.4p1`)."""
    text = name.strip()
    if text.startswith("cpe:/"):
        try:
            text = CpeName(text).as_fs()
        except (NotImplementedError, ValueError, KeyError, TypeError) as exc:
            raise CpeError(f"not a CPE 2.2 URI: {name!r}") from exc
    if not text.startswith(CPE23_PREFIX):
        raise CpeError(f"not a CPE name: {name!r}")
    fields = split_cpe_string(text)
    if 5 <= len(fields) < 13:  # a prefix such as endoflife.date's `cpe:2.3:a:exim:exim`
        fields += [ANY] * (13 - len(fields))
    if len(fields) != 13 or fields[2] not in ("a", "o", "h") or not fields[3] or not fields[4]:
        raise CpeError(f"malformed CPE 2.3 name: {name!r}")
    return Cpe(fields[2], fields[3].lower(), fields[4].lower(), fields[5] or ANY, fields[6] or ANY)


def version_key(version: str) -> VersionKey:
    """A sort key in natural order; `2.4` and `2.4.0` are the same version."""
    text = version.strip().lower()
    while text.endswith(".0") and len(text) > 2:
        text = text[:-2]
    return _natural(text)


@dataclass(frozen=True, slots=True)
class Criterion:
    """One vulnerable `cpeMatch` of a CVE: an exact version, or a range over `*`."""

    cve_id: str
    criteria: str  # the CPE 2.3 match string as NVD publishes it
    version: str  # exact version, `*` (any, bounded by the range) or `-` (none)
    start_including: str | None = None
    start_excluding: str | None = None
    end_including: str | None = None
    end_excluding: str | None = None

    @property
    def range_text(self) -> str:
        """The affected versions in words a person can check: `>= 2.4.17, <= 2.4.38`."""
        if self.version not in (ANY, NOT_APPLICABLE):
            return f"= {self.version}"
        parts = []
        if self.start_including:
            parts.append(f">= {self.start_including}")
        if self.start_excluding:
            parts.append(f"> {self.start_excluding}")
        if self.end_including:
            parts.append(f"<= {self.end_including}")
        if self.end_excluding:
            parts.append(f"< {self.end_excluding}")
        return ", ".join(parts) or "all versions"


class CompiledCriterion:
    """A criterion with its version bounds turned into sort keys once."""

    __slots__ = ("criterion", "end_ex", "end_in", "exact", "none", "start_ex", "start_in")

    def __init__(self, criterion: Criterion, key: Any = version_key):
        def bound(text: str | None) -> Any:
            return key(text) if text else None

        self.criterion = criterion
        self.none = criterion.version == NOT_APPLICABLE
        self.exact = None if criterion.version in (ANY, NOT_APPLICABLE) else key(criterion.version)
        self.start_in = bound(criterion.start_including)
        self.start_ex = bound(criterion.start_excluding)
        self.end_in = bound(criterion.end_including)
        self.end_ex = bound(criterion.end_excluding)

    @property
    def has_bounds(self) -> bool:
        return any(b is not None for b in (self.start_in, self.start_ex, self.end_in, self.end_ex))

    def matches(self, version: VersionKey) -> bool:
        """Whether an observed version (as a key) is affected: every bound given holds."""
        if self.none:
            return False
        if self.exact is not None and version != self.exact:
            return False
        return not (
            (self.start_in is not None and version < self.start_in)
            or (self.start_ex is not None and version <= self.start_ex)
            or (self.end_in is not None and version > self.end_in)
            or (self.end_ex is not None and version >= self.end_ex)
        )
