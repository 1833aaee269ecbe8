"""Who is asking, and from which site: the client address and origin behind reverse proxies.

`X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host` are believed only when the
peer (the TCP connection's other end) is one of `settings.dashboard.trusted_proxies`;
anyone else can write those headers. Through a chain of trusted proxies the client is the
right-most address in `X-Forwarded-For` that is not itself a trusted proxy (each proxy
appends the address it saw; entries to the left of that are the client's own claims).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Client:
    """The client as the dashboard believes it: address, and the scheme and host it used."""

    address: str
    scheme: str
    host: str  # host[:port] the browser addressed


def _address(text: str | None) -> Address | None:
    try:
        address = ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address.version == n.version and address in n for n in proxies)


def client_address(peer: str | None, forwarded_for: str | None, proxies: Sequence[Network]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy."""
    current = _address(peer)
    if current is None:
        return peer or "-"
    if not forwarded_for:
        return str(current)
    for hop in reversed(forwarded_for.split(",")):
        if not _trusted(current, proxies):
            break
        claimed = _address(hop)
        if claimed is None:  # a trusted proxy passed on something that is not an address
            break
        current = claimed
    return str(current)


def client_of(
    peer: str | None,
    headers: dict[str, str],
    scheme: str,
    host: str,
    proxies: Sequence[Network],
) -> Client:
    """The client of a request (`headers` with lower-case names)."""
    peer_address = _address(peer)
    behind_proxy = peer_address is not None and _trusted(peer_address, proxies)
    if behind_proxy:
        scheme = headers.get("x-forwarded-proto", scheme).split(",")[0].strip().lower()
        host = headers.get("x-forwarded-host", host).split(",")[0].strip()
    return Client(
        address=client_address(peer, headers.get("x-forwarded-for"), proxies),
        scheme=scheme,
        host=host,
    )


def _origin_parts(origin: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


def same_origin(origin: str, client: Client) -> bool:
    """True when a request's `Origin` header names the site the client addressed."""
    sent = _origin_parts(origin)
    return sent is not None and sent == _origin_parts(f"{client.scheme}://{client.host}")
