"""The registry of every check: stable id, category, severity, effort, fi/sv/en words.

Checks are declared once, in `riskiturva/check_data/<category>.toml`; the category is the
first segment of the id (`tls.protocol.tls1_0` is a TLS check). Rules emit ids; the words
are looked up here at display time, in the reader's language.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources

LANGUAGES = ("fi", "sv", "en")
CHECK_ID = re.compile(r"^(tls|email|dns|services|web|software)(\.[a-z0-9_]+){2,3}$")


class Category(StrEnum):
    TLS = "tls"
    EMAIL = "email"
    DNS = "dns"
    SERVICES = "services"
    WEB = "web"
    SOFTWARE = "software"  # known-exploited vulnerabilities and end-of-life software


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse: critical 4 … info 0."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}


class Effort(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class Check:
    id: str
    category: Category
    severity: Severity
    effort: Effort
    title: Mapping[str, str]
    guidance: Mapping[str, str]
    references: tuple[str, ...] = ()
    deadline_days: int | None = None  # overrides the severity's deadline (KEV: 14 days)

    def title_in(self, language: str) -> str:
        return self.title.get(language) or self.title["en"]

    def guidance_in(self, language: str) -> str:
        return self.guidance.get(language) or self.guidance["en"]


class CheckRegistryError(ValueError):
    """A check declaration is malformed."""


class Registry(Mapping[str, Check]):
    def __init__(self, checks: Mapping[str, Check]):
        self._checks = dict(sorted(checks.items()))

    def __getitem__(self, check_id: str) -> Check:
        return self._checks[check_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._checks)

    def __len__(self) -> int:
        return len(self._checks)


def parse_check(check_id: str, data: Mapping[str, object], source: str) -> Check:
    """Validate one declaration; errors name the source file and the id."""
    where = f"{source}: {check_id}"
    if not CHECK_ID.match(check_id):
        raise CheckRegistryError(f"{where}: malformed id (want category.group.name)")
    unknown = set(data) - {"severity", "effort", "title", "guidance", "references", "deadline_days"}
    if unknown:
        raise CheckRegistryError(f"{where}: unknown keys {sorted(unknown)}")
    texts = {}
    for field in ("title", "guidance"):
        value = data.get(field)
        if not isinstance(value, Mapping):
            raise CheckRegistryError(f"{where}: {field} must be a table of fi/sv/en texts")
        missing = [lang for lang in LANGUAGES if not str(value.get(lang, "")).strip()]
        if missing:
            raise CheckRegistryError(f"{where}: {field} lacks {', '.join(missing)}")
        texts[field] = {lang: str(value[lang]).strip() for lang in LANGUAGES}
    try:
        severity = Severity(str(data.get("severity")))
        effort = Effort(str(data.get("effort")))
    except ValueError as exc:
        raise CheckRegistryError(f"{where}: {exc}") from exc
    references = data.get("references", ())
    if not isinstance(references, list | tuple):
        raise CheckRegistryError(f"{where}: references must be a list")
    deadline = data.get("deadline_days")
    if deadline is not None and (not isinstance(deadline, int) or deadline < 1):
        raise CheckRegistryError(f"{where}: deadline_days must be a positive number of days")
    return Check(
        id=check_id,
        category=Category(check_id.split(".", 1)[0]),
        severity=severity,
        effort=effort,
        title=texts["title"],
        guidance=texts["guidance"],
        references=tuple(str(r) for r in references),
        deadline_days=deadline,
    )


@cache
def load_registry() -> Registry:
    """Load every `check_data/*.toml` shipped with the package (static data, read once)."""
    checks: dict[str, Check] = {}
    folder = resources.files("riskiturva") / "check_data"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        for check_id, data in tomllib.loads(entry.read_text(encoding="utf-8")).items():
            if check_id in checks:
                raise CheckRegistryError(f"{entry.name}: {check_id} is declared twice")
            check = parse_check(check_id, data, entry.name)
            if entry.name != f"{check.category}.toml":
                raise CheckRegistryError(
                    f"{entry.name}: {check_id} belongs in {check.category}.toml"
                )
            checks[check_id] = check
    return Registry(checks)


def markdown_table(registry: Mapping[str, Check]) -> str:
    """Every check as a Markdown table: id, category, severity, effort, English title."""
    lines = ["| id | category | severity | effort | title (en) |", "|---|---|---|---|---|"]
    for check in registry.values():
        row = (check.id, check.category, check.severity, check.effort, check.title["en"])
        lines.append("| `{}` | {} | {} | {} | {} |".format(*row))
    return "\n".join(lines) + "\n"
