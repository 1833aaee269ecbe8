"""The weaknesses the shared lab does not plant, on a small estate of our own.

The estate is started with the lab's own machinery (`riskiturva.lab.estate.up` with a
manifest written here): real Knot DNS serving signed zones whose signatures expire in
three days, nginx serving MTA-STS policies, and an SMTP server whose TLSA record does not
match. It uses its own loopback addresses, so it can run beside the shared lab, and the
same two-way ground-truth check (`Manifest.verify`).
"""

from __future__ import annotations

import base64
import shutil
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from riskiturva.collector import SubjectStatus
from riskiturva.lab.estate import LabError, down, up
from riskiturva.lab.manifest import Manifest, load_manifest
from tests.test_dns_email_lab import findings, lab_config, scan

pytestmark = pytest.mark.lab


def _dkim(bits: int, tags: str = "") -> str:
    """A DKIM TXT rdata with a key of `bits` (a 512-bit one from bare public numbers)."""
    if bits >= 1024:
        key = rsa.generate_private_key(65537, bits).public_key()
    else:
        key = rsa.RSAPublicNumbers(65537, (1 << (bits - 1)) | 1).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    text = f"v=DKIM1; {tags}k=rsa; p={base64.b64encode(der).decode()}"
    return " ".join(f'"{chunk}"' for chunk in textwrap.wrap(text, 255))


MANIFEST = """
[lab]
parent_zone = "test"
signature_days = 3  # every signed zone: dns.dnssec.expiring_signatures

[partner]
slug = "testipalvelu"
name = "Testipalvelu Oy"
domain = "testipalvelu.test"
nameservers = {{ ns1 = "127.55.0.1", ns2 = "127.55.1.1" }}
records = []

[[municipalities]]
slug = "kokeila"
name = {{ fi = "Kokeilan kunta", sv = "Kokeila kommun", en = "Municipality of Kokeila" }}
domain = "kokeila.test"
network = "127.62.1.0/24"
nameservers = ["ns1", "ns2"]
dnssec = "signed"
axfr = false
dkim = [{{ name = "s2048._domainkey", bits = 2048 }}]
records = [
    # 5 lookups, 3 of them void (g1 and g2 have no address, g3 does not exist)
    '@ TXT "v=spf1 ptr mx a:g1.kokeila.test a:g2.kokeila.test exists:g3.kokeila.test ?all"',
    'g1 TXT "not an address"',
    'g2 TXT "not an address"',
    '_dmarc TXT "v=DMARC1; p=quarantine; sp=none; pct=50"',
    '_mta-sts TXT "v=STSv1; id=1"',
    '_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tlsrpt@kokeila.test"',
    '@ CAA 0 issue "testipalvelu.test"',
    '@ MX 10 mx1.kokeila.test.',
    '@ MX 20 mx2.kokeila.test.',
    'mx2 CNAME mx1.kokeila.test.',
    '_25._tcp.mx1 TLSA 3 1 1 {zero_digest}',
    'testi._domainkey TXT {testing_key}',
    'vanha._domainkey TXT "v=DKIM1; k=rsa; p="',
    'heikko._domainkey TXT {weak_key}',
    # A domain that receives no mail, on purpose, but lets anyone send.
    'eiposti MX 0 .',
    'eiposti TXT "v=spf1 a -all"',
    # A newsletter domain whose MX does not exist and whose MTA-STS is switched off.
    'uutiskirje MX 10 mx9.kokeila.test.',
    'uutiskirje TXT "v=spf1 -all"',
    '_mta-sts.uutiskirje TXT "v=STSv1; id=2"',
    # A forms domain without MX, with a typo in its SPF.
    'lomake TXT "v=spf1 ipv4:127.62.1.25 -all"',
    # A shop whose MTA-STS policy host does not exist.
    'kauppa MX 10 mx1.kokeila.test.',
    '_mta-sts.kauppa TXT "v=STSv1; id=3"',
]

[[municipalities.hosts]]
name = "mx1"
ip = "127.62.1.25"
smtp = {{ starttls = true, tlsa = false }}

[[municipalities.hosts]]
name = "mta-sts"
ip = "127.62.1.12"
tls = "modern"
cert = "valid"
web = "hardened"
mta_sts = {{ mode = "enforce", mx = ["mx1.kokeila.test"] }}

[[municipalities.hosts]]
name = "mta-sts.uutiskirje"
ip = "127.62.1.13"
tls = "modern"
cert = "valid"
web = "hardened"
mta_sts = {{ mode = "none", mx = [] }}

[[municipalities.hosts]]
name = "palvelin"
ip = "127.62.1.20"
services = ["telnet"]

[[municipalities.assets]]
kind = "domain"
value = "kokeila.test"

[[municipalities.assets]]
kind = "mail_domain"
value = "kokeila.test"
dkim_selectors = ["s2048", "testi", "vanha", "heikko"]

[[municipalities.assets]]
kind = "domain"
value = "eiposti.kokeila.test"

[[municipalities.assets]]
kind = "mail_domain"
value = "uutiskirje.kokeila.test"

[[municipalities.assets]]
kind = "mail_domain"
value = "lomake.kokeila.test"

[[municipalities.assets]]
kind = "mail_domain"
value = "kauppa.kokeila.test"

[[municipalities.expect]]
collector = "dns_email"
subject = "kokeila.test"
checks = [
    "email.spf.ptr_used",
    "email.spf.too_many_void_lookups",
    "email.spf.neutral_all",
    "email.dmarc.subdomain_policy_none",
    "email.dmarc.pct_partial",
    "email.dmarc.no_rua",
    "email.dkim.key_under_1024",
    "email.dkim.revoked_key",
    "email.dkim.testing",
    "email.mx.cname",
    "email.mta_sts.mx_not_covered",
    "email.dane.mismatch",
    "email.dane.missing",
    "dns.dnssec.expiring_signatures",
]

[[municipalities.expect]]
collector = "dns_email"
subject = "eiposti.kokeila.test"
checks = [
    "email.spf.nonsending_not_restricted",
    "email.dmarc.inherited_from_org_domain",
    "email.dmarc.policy_none",
    "dns.dnssec.expiring_signatures",
]

[[municipalities.expect]]
collector = "dns_email"
subject = "uutiskirje.kokeila.test"
checks = [
    "email.mx.unresolvable",
    "email.mta_sts.mode_none",
    "email.tlsrpt.missing",
    "email.dmarc.inherited_from_org_domain",
    "email.dmarc.policy_none",
]
may = ["email.dkim.not_found"]

[[municipalities.expect]]
collector = "dns_email"
subject = "lomake.kokeila.test"
checks = [
    "email.spf.syntax_error",
    "email.mx.missing",
    "email.dmarc.inherited_from_org_domain",
    "email.dmarc.policy_none",
]

[[municipalities.expect]]
collector = "dns_email"
subject = "kauppa.kokeila.test"
checks = [
    "email.spf.missing",
    "email.mta_sts.policy_unavailable",
    "email.tlsrpt.missing",
    "email.dane.mismatch",
    "email.dmarc.inherited_from_org_domain",
    "email.dmarc.policy_none",
]
may = ["email.dkim.not_found"]
"""


@pytest.fixture(scope="module")
def estate() -> Iterator[tuple[Manifest, Path]]:
    directory = Path(tempfile.mkdtemp(prefix="riskiturva-dns-email-"))
    directory.chmod(0o755)
    path = directory / "manifest.toml"
    path.write_text(
        MANIFEST.format(
            zero_digest="00" * 32,
            testing_key=_dkim(2048, "t=y; "),
            weak_key=_dkim(512),
        ),
        encoding="utf-8",
    )
    manifest = load_manifest(path)
    try:
        state = up(directory / "lab", manifest=manifest)
    except LabError as exc:
        shutil.rmtree(directory, ignore_errors=True)
        pytest.fail(f"could not start the estate: {exc}", pytrace=False)
    try:
        yield manifest, Path(state.config_path)
    finally:
        down(directory / "lab")
        shutil.rmtree(directory, ignore_errors=True)


def test_the_weaknesses_the_shared_lab_lacks_are_found_and_nothing_else(estate):
    manifest, config_path = estate
    observations = scan(lab_config(config_path))
    assert {o.subject: o.status for o in observations} == dict.fromkeys(
        {e.subject for e in manifest.expectations}, SubjectStatus.OK
    )
    verdict = manifest.verify("dns_email", findings(observations))
    assert verdict.missing == frozenset()
    assert verdict.unexpected == frozenset()
