"""Severity, category and titles always from the check registry (the one table)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from riskiturva.checks import Check, Severity

COUNTED_SEVERITIES = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)


class _Stored(Protocol):
    check_id: str
    severity: str
    category: str


class _Ranked(Protocol):
    @property
    def severity(self) -> Severity: ...

    @property
    def check_id(self) -> str: ...

    @property
    def subject(self) -> str: ...


def registry_severity(finding: _Stored, registry: Mapping[str, Check]) -> Severity:
    """The registry's severity of a stored finding (the stored one for a check no longer
    registered)."""
    check = registry.get(finding.check_id)
    return check.severity if check else Severity(finding.severity)


def registry_category(finding: _Stored, registry: Mapping[str, Check]) -> str:
    check = registry.get(finding.check_id)
    return str(check.category) if check else finding.category


def worst_first_key(item: _Ranked) -> tuple[int, str, str]:
    """Sort key: worst severity first, then check id and subject."""
    return (-item.severity.rank, item.check_id, item.subject)
