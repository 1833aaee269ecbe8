"""The outdated-software table (`outdated.toml`): load it and match it against open ports."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from collectors.services.facts import OpenPort

_VERSION_PART = re.compile(r"\d+")


@dataclass(frozen=True)
class OutdatedSoftware:
    """One row: how to recognise the software, which versions are affected, and the source."""

    name: str
    reason: str
    source: str
    cpe: str | None = None  # nmap CPE prefix; the part after it is the version
    pattern: re.Pattern[str] | None = None  # over "product version extrainfo", group 1 = version
    below: str | None = None
    series: str | None = None

    def affected_version(self, port: OpenPort) -> str | None:
        """The detected version when this row applies to the port, else None."""
        for version in self._versions(port):
            if self._affects(version):
                return version
        return None

    def _versions(self, port: OpenPort) -> list[str]:
        found = []
        if self.cpe:
            prefix = self.cpe + ":"
            found += [c.removeprefix(prefix) for c in port.cpe if c.startswith(prefix)]
        if self.pattern:
            text = " ".join((port.product, port.version, port.extrainfo))
            found += [m.group(1) for m in self.pattern.finditer(text)]
        return [v for v in found if v]

    def _affects(self, version: str) -> bool:
        parts = version_tuple(version)
        if not parts:
            return False
        if self.below is not None:
            return _padded(parts) < _padded(version_tuple(self.below))
        assert self.series is not None
        series = version_tuple(self.series)
        return parts[: len(series)] == series


def version_tuple(version: str) -> tuple[int, ...]:
    """The leading dotted numbers: "9.2p1 Debian" → (9, 2); "1.0.2k-fips" → (1, 0, 2)."""
    match = re.match(r"\d+(?:\.\d+)*", version.strip())
    return tuple(int(p) for p in _VERSION_PART.findall(match.group(0))) if match else ()


def _padded(parts: tuple[int, ...]) -> tuple[int, ...]:
    return parts + (0,) * (6 - len(parts))


class OutdatedTableError(ValueError):
    """A row of the outdated-software table is malformed."""


def parse_table(text: str) -> tuple[OutdatedSoftware, ...]:
    rows = []
    for index, row in enumerate(tomllib.loads(text).get("software", [])):
        where = f"software[{index}] ({row.get('name', '?')})"
        unknown = set(row) - {"name", "reason", "source", "cpe", "pattern", "below", "series"}
        if unknown:
            raise OutdatedTableError(f"{where}: unknown keys {sorted(unknown)}")
        if not all(str(row.get(k, "")).strip() for k in ("name", "reason", "source")):
            raise OutdatedTableError(f"{where}: name, reason and source are required")
        if ("cpe" in row) == ("pattern" in row):
            raise OutdatedTableError(f"{where}: give exactly one of cpe or pattern")
        if ("below" in row) == ("series" in row):
            raise OutdatedTableError(f"{where}: give exactly one of below or series")
        if not version_tuple(str(row.get("below") or row.get("series"))):
            raise OutdatedTableError(f"{where}: the version bound is not a version")
        pattern = re.compile(row["pattern"]) if "pattern" in row else None
        if pattern is not None and pattern.groups < 1:
            raise OutdatedTableError(f"{where}: the pattern needs a group for the version")
        rows.append(
            OutdatedSoftware(
                name=row["name"],
                reason=row["reason"],
                source=row["source"],
                cpe=row.get("cpe"),
                pattern=pattern,
                below=row.get("below"),
                series=row.get("series"),
            )
        )
    return tuple(rows)


@cache
def load_table() -> tuple[OutdatedSoftware, ...]:
    """The table shipped with the collector (static data, read once)."""
    text = (resources.files("collectors.services") / "outdated.toml").read_text(encoding="utf-8")
    return parse_table(text)
