"""DKIM keys (RFC 6376 §3.6.1) at the configured and commonly used selectors.

A domain's selectors cannot be listed from DNS, so "none found" only means none of the
selectors asked about exists (the finding is low for that reason).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from dataclasses import dataclass, replace

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from riskiturva.dns_seam import QueryFunction

# Selectors of the common mail platforms and defaults of common signing software.
COMMON_SELECTORS = (
    "selector1",  # Microsoft 365
    "selector2",
    "google",  # Google Workspace
    "default",  # OpenDKIM, cPanel, rspamd
    "dkim",
    "mail",
    "k1",  # Mailchimp / Mandrill
    "k2",
    "s1",
    "s2",
)
_TAG = re.compile(r"^([a-z]+)\s*=\s*(.*)$", re.IGNORECASE | re.DOTALL)


class DkimSyntaxError(ValueError):
    """The key record cannot be read."""


@dataclass(frozen=True)
class DkimKey:
    selector: str
    record: str
    key_type: str = "rsa"
    bits: int | None = None  # RSA modulus size; None for Ed25519 or an unreadable key
    revoked: bool = False  # `p=` empty (§3.6.1)
    testing: bool = False  # `t=y`
    error: str | None = None


def parse_dkim(selector: str, text: str) -> DkimKey:
    """Read a key record; never raises — an unreadable key is kept with its error."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        match = _TAG.match(part.strip())
        if match is not None:
            tags.setdefault(match.group(1).lower(), re.sub(r"\s+", "", match.group(2)))
    key_type = tags.get("k", "rsa").lower()
    flags = tags.get("t", "").lower().split(":")
    base = DkimKey(selector, text, key_type, testing="y" in flags)
    if "p" not in tags:
        return replace(base, error="the required tag p= is missing")
    if not tags["p"]:
        return replace(base, revoked=True)
    try:
        der = base64.b64decode(tags["p"], validate=True)
        key = load_der_public_key(der)
    except (binascii.Error, ValueError, UnsupportedAlgorithm) as exc:
        return replace(base, error=f"p= is not a readable public key ({exc})")
    if isinstance(key, rsa.RSAPublicKey):
        return replace(base, bits=key.key_size)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return base
    return replace(base, error=f"unsupported key type {type(key).__name__}")


@dataclass(frozen=True)
class DkimFacts:
    domain: str
    selectors_tried: tuple[str, ...]
    keys: tuple[DkimKey, ...]


def is_dkim_key(text: str) -> bool:
    """A key record, not some other TXT at the name (v=DKIM1 first, or a p= tag)."""
    return text.startswith("v=DKIM1") or re.search(r"(^|;)\s*p\s*=", text) is not None


async def find_dkim(domain: str, selectors: tuple[str, ...], query: QueryFunction) -> DkimFacts:
    """Keys at each selector; raises only `LookupFailed`."""
    answers = await asyncio.gather(*(query(f"{s}._domainkey.{domain}", "TXT") for s in selectors))
    keys = tuple(
        parse_dkim(selector, text)
        for selector, answer in zip(selectors, answers, strict=True)
        for text in answer.texts
        if is_dkim_key(text)
    )
    return DkimFacts(domain, selectors, keys)
