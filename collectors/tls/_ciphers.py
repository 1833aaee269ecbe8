"""Classifying suites, curves and keys (pure helpers shared by the rules and the grade)."""

from __future__ import annotations

import re

from collectors.tls.facts import AcceptedSuite

_BLOCK_64 = ("3DES", "_DES_", "DES40", "_DES_CBC", "IDEA", "RC2")
_AEAD = ("_GCM_", "CHACHA20", "_CCM")
_STRONG_NAMED_CURVES = {"X25519": 256, "X448": 448}


def is_null_export_anon(suite: AcceptedSuite) -> bool:
    name = suite.name
    return suite.anonymous or "_anon_" in name or "NULL" in name or "EXPORT" in name


def is_rc4(suite: AcceptedSuite) -> bool:
    return "_RC4_" in suite.name


def is_block_64(suite: AcceptedSuite) -> bool:
    return any(marker in suite.name for marker in _BLOCK_64)


def is_aead(suite: AcceptedSuite) -> bool:
    return suite.protocol == "TLSv1.3" or any(marker in suite.name for marker in _AEAD)


def has_forward_secrecy(suite: AcceptedSuite) -> bool:
    """TLS 1.3 always; earlier versions only with an ephemeral, authenticated key exchange."""
    if suite.protocol == "TLSv1.3":
        return True
    return ("_DHE_" in suite.name or "_ECDHE_" in suite.name) and not is_null_export_anon(suite)


def curve_bits(name: str) -> int | None:
    """Security size of a named curve (`secp192r1` → 192, `X25519` → 256); None if unknown."""
    if name in _STRONG_NAMED_CURVES:
        return _STRONG_NAMED_CURVES[name]
    match = re.search(r"(\d{3})", name)
    return int(match.group(1)) if match else None


def is_weak_curve(name: str) -> bool:
    bits = curve_bits(name)
    return bits is not None and bits < 256


def weak_dh(suite: AcceptedSuite) -> bool:
    return suite.kx_type == "DH" and suite.kx_bits is not None and suite.kx_bits < 2048


def weak_ecdh(suite: AcceptedSuite) -> bool:
    if suite.kx_type != "ECDH":
        return False
    if suite.kx_curve:
        return is_weak_curve(suite.kx_curve)
    return suite.kx_bits is not None and suite.kx_bits < 253


def weak_key(key_type: str, bits: int) -> bool:
    """RSA or DSA under 2048 bits, or an EC key under 256 bits."""
    return (key_type in ("RSA", "DSA") and bits < 2048) or (key_type == "EC" and bits < 256)
