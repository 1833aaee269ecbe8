"""Software on an open port, from what nmap's service detection said (product, version, CPE).

nmap reads SSH, FTP, SMTP and HTTP banners with its probes and names the product in CPE
form; a distribution build shows in its version or extra info (`9.2p1 Debian 2+deb12u3`,
`(Debian)`, `Ubuntu Linux; protocol 2.0`), and the products behind a web server in its extra
info (`PHP/7.4.3`, `OpenSSL/1.0.2k-fips`, the TLS stack).
"""

from __future__ import annotations

from collections.abc import Iterator

from collectors.services.facts import OpenPort
from riskiturva.intel.matching import ANY, NOT_APPLICABLE, CpeError, parse_cpe
from riskiturva.intel.software import (
    Confidence,
    Software,
    best_per_product,
    distribution_of,
    distribution_software,
    from_product_tokens,
    split_version,
)


def identify(port: OpenPort) -> tuple[Software, ...]:
    """The software nmap recognised on the port (nothing when it only guessed by number)."""
    if not port.identified:
        return ()
    described = " ".join(p for p in (port.product, port.version) if p)
    if port.extrainfo:
        described += f" ({port.extrainfo})"
    evidence = f"nmap -sV {port.key}: {described}"[:300]
    name, release = distribution_of(f"{port.version} {port.extrainfo}")
    found = list(_from_cpes(port, evidence, name, release))
    if port.extrainfo:
        found += from_product_tokens(port.extrainfo, f"nmap -sV {port.key}")
    system = distribution_software(name, release, evidence)
    if system is not None:
        found.append(system)
    return best_per_product(found)


def _from_cpes(port: OpenPort, evidence: str, name: str, release: str) -> Iterator[Software]:
    distribution = f"{name} {release}".strip()
    for text in port.cpe:
        try:
            cpe = parse_cpe(text)
        except CpeError:
            continue
        if cpe.part != "a":  # nmap's OS names (cpe:/o:linux:linux_kernel) carry no version
            continue
        raw = cpe.full_version if cpe.version not in (ANY, NOT_APPLICABLE) else ""
        version, _ = split_version(raw)
        yield Software(
            product=port.product or cpe.product,
            cpe=cpe.with_version(version).formatted(),
            evidence=evidence,
            confidence=Confidence.LOW if distribution else Confidence.HIGH,
            version=version,
            distribution=distribution,
            package=_package_revision(port.version, name) if distribution else "",
        )


def _package_revision(version: str, distribution: str) -> str:
    """`9.2p1 Debian 2+deb12u3` → `2+deb12u3`."""
    words = version.split()
    for index, word in enumerate(words[:-1]):
        if word.lower() == distribution.lower():
            return words[index + 1]
    return ""
