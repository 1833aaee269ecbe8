"""What may be scanned: the scope guard every collector's traffic passes through.

Before any packet is sent, an address must lie inside the organisation's declared networks
and a name inside its declared domains. Anything else is skipped and recorded on the scan
run as `out_of_scope`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from riskiturva.config import Organisation, Scope


class ScopeGuard:
    def __init__(self, organisations: Iterable[Organisation]):
        self._scopes: dict[str, Scope] = {o.slug: o.scope for o in organisations}

    def allows_address(self, organisation: str, address: str) -> bool:
        scope = self._scopes.get(organisation)
        if scope is None:
            return False
        try:
            if "/" in address:
                return scope.covers_network(ipaddress.ip_network(address, strict=True))
            return scope.covers_address(address)
        except ValueError:
            return False

    def allows_name(self, organisation: str, name: str) -> bool:
        scope = self._scopes.get(organisation)
        return scope is not None and scope.covers_name(name)
