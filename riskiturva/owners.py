"""Who fixes a problem: the check's default role, overridden by the organisation's configuration.

Most specific wins: the asset's `owner`, then the organisation's `owners` entry with the
longest matching check-id prefix (`"email.dmarc"` before `"email"` before `"*"`), then the
registry's default for the check. A partner named by role gets the partner's name.
"""

from __future__ import annotations

from dataclasses import dataclass

from riskiturva.checks import Check, OwnerRole
from riskiturva.config import Organisation, Partner


@dataclass(frozen=True)
class Responsible:
    role: OwnerRole
    name: str | None  # who exactly, when the configuration says (a partner is always named)


def _prefix_match(prefix: str, check_id: str) -> int:
    """Length of `prefix` in segments if it covers `check_id` ("*" covers all), else -1."""
    if prefix == "*":
        return 0
    if check_id == prefix or check_id.startswith(prefix + "."):
        return prefix.count(".") + 1
    return -1


def responsible_for(
    check: Check,
    organisation: Organisation,
    partner: Partner | None,
    asset_value: str | None = None,
) -> Responsible:
    """Who fixes `check` on `asset_value` (the asset's configured value) at `organisation`."""
    owner = next((a.owner for a in organisation.assets if a.value == asset_value and a.owner), None)
    if owner is None:
        matches = [(_prefix_match(k, check.id), o) for k, o in organisation.owners.items()]
        best = max((m for m in matches if m[0] >= 0), key=lambda m: m[0], default=None)
        owner = best[1] if best else None
    role = owner.role if owner else check.owner
    name = owner.name if owner else None
    if role is OwnerRole.PARTNER:
        if partner is None:  # the configuration refuses this; a registry default may not
            return Responsible(OwnerRole.OWN_IT, None)
        name = name or partner.name
    return Responsible(role, name)
