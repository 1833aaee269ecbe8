"""The lab CA and every certificate the lab serves, generated fresh at each start.

Certificates are dated relative to the moment the lab starts, so "expired" and "expires in
ten days" stay true. A root signs one issuing CA, which signs the leaves; the collectors
trust the root through `settings.tls.extra_ca_files`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dh, ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# RFC 2409 Oakley group 2: the well-known 1024-bit MODP prime, for `tls.cipher.weak_dh`.
_OAKLEY_GROUP_2 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
    16,
)

# Certificate kinds a manifest host may ask for (`cert = ...`).
# `wildcard`: a valid certificate for `*.<municipality domain>` only (the name's last two labels).
CERT_KINDS = ("valid", "valid_rsa", "expired", "expiring", "self_signed", "wrong_name", "no_chain",
              "weak", "wildcard")  # fmt: skip


@dataclass(frozen=True)
class IssuedCert:
    """Files for one served certificate."""

    key: Path
    chain: Path  # what the server sends: leaf, then the issuing CA unless left out
    leaf: Path
    ocsp: Path | None  # a stapled OCSP response, for servers that staple
    spki_sha256: str  # for TLSA 3 1 1


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Riskiturva Lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_key(key: PrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


class LabCA:
    """A root and an issuing CA, written to `directory`."""

    def __init__(self, directory: Path, now: dt.datetime) -> None:
        self.directory = directory
        self.now = now
        directory.mkdir(parents=True, exist_ok=True)
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.root = self._ca_cert(
            "Riskiturva Lab Root CA", self.root_key, self.root_key, None, path_length=1
        )
        self.issuer_key = ec.generate_private_key(ec.SECP384R1())
        self.issuer = self._ca_cert(
            "Riskiturva Lab Issuing CA 1", self.issuer_key, self.root_key, self.root, path_length=0
        )
        self.root_path = directory / "lab-ca.pem"
        self.root_path.write_bytes(_pem(self.root))

    def _ca_cert(
        self,
        common_name: str,
        key: ec.EllipticCurvePrivateKey,
        signer: ec.EllipticCurvePrivateKey,
        signer_cert: x509.Certificate | None,
        path_length: int,
    ) -> x509.Certificate:
        issuer_name = signer_cert.subject if signer_cert else _name(common_name)
        return (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - dt.timedelta(days=30))
            .not_valid_after(self.now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(signer, hashes.SHA384())
        )

    def issue(self, hostname: str, kind: str, extra_names: tuple[str, ...] = ()) -> IssuedCert:
        """Issue the certificate a host of `kind` serves (see `CERT_KINDS`); `extra_names`
        are further SANs."""
        if kind not in CERT_KINDS:
            raise ValueError(f"unknown certificate kind {kind!r}")
        key: PrivateKey
        if kind == "weak":
            key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
        elif kind == "valid_rsa":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            key = ec.generate_private_key(ec.SECP256R1())
        begin, end = self.now - dt.timedelta(days=1), self.now + dt.timedelta(days=89)
        if kind == "expired":
            begin, end = self.now - dt.timedelta(days=120), self.now - dt.timedelta(days=30)
        elif kind == "expiring":
            begin, end = self.now - dt.timedelta(days=80), self.now + dt.timedelta(days=10)
        san = hostname
        if kind == "wrong_name":
            san = "portaali.vanhakumppani.test"
        elif kind == "wildcard":
            san = "*." + ".".join(hostname.split(".")[-2:])
        # openssl re-signs only a self-signed input: the weak leaf starts as one.
        signs_itself = kind in ("self_signed", "weak")
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(san))
            .issuer_name(_name(san) if signs_itself else self.issuer.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(begin)
            .not_valid_after(end)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in (san, *extra_names)]),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        if not signs_itself:  # openssl would not take a "self-signed" leaf with an AKI
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.issuer_key.public_key()),
                critical=False,
            )
        signer: PrivateKey = key if signs_itself else self.issuer_key
        leaf = builder.sign(signer, hashes.SHA256())

        base = self.directory / hostname

        def path(suffix: str) -> Path:
            return base.with_name(base.name + suffix)

        if kind == "weak":
            leaf = self._resign_sha1(leaf, path)
        key_path, leaf_path, chain_path = path(".key"), path(".crt"), path(".chain.pem")
        _write_key(key, key_path)
        leaf_path.write_bytes(_pem(leaf))
        sends_issuer = kind not in ("self_signed", "no_chain")
        chain_path.write_bytes(_pem(leaf) + (_pem(self.issuer) if sends_issuer else b""))
        ocsp_path = None
        if kind in ("valid", "valid_rsa", "wildcard"):
            ocsp_path = path(".ocsp.der")
            ocsp_path.write_bytes(self._ocsp_response(leaf))
        spki = leaf.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return IssuedCert(
            key_path, chain_path, leaf_path, ocsp_path, hashlib.sha256(spki).hexdigest()
        )

    def _resign_sha1(self, leaf: x509.Certificate, path: Callable[[str], Path]) -> x509.Certificate:
        """Re-sign `leaf` with SHA-1 through the openssl CLI (cryptography refuses to)."""
        issuer_key, issuer_cert = path(".issuer.key"), path(".issuer.crt")
        sha256_leaf, sha1_leaf = path(".sha256.crt"), path(".sha1.crt")
        _write_key(self.issuer_key, issuer_key)
        issuer_cert.write_bytes(_pem(self.issuer))
        sha256_leaf.write_bytes(_pem(leaf))
        try:
            result = subprocess.run(
                ["openssl", "x509", "-in", str(sha256_leaf), "-CA", str(issuer_cert),
                 "-CAkey", str(issuer_key), "-sha1", "-set_serial", str(leaf.serial_number),
                 # Keep the leaf's validity; openssl would otherwise reset it to 30 days.
                 "-preserve_dates",
                 "-out", str(sha1_leaf)],
                check=False, capture_output=True, text=True,
            )  # fmt: skip
            if result.returncode:
                raise RuntimeError(f"openssl could not re-sign with SHA-1: {result.stderr}")
            return x509.load_pem_x509_certificate(sha1_leaf.read_bytes())
        finally:
            for written in (issuer_key, issuer_cert, sha256_leaf, sha1_leaf):
                written.unlink(missing_ok=True)

    def _ocsp_response(self, leaf: x509.Certificate) -> bytes:
        """A "good" OCSP response from the issuing CA, for servers to staple."""
        response = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=leaf,
                issuer=self.issuer,
                algorithm=hashes.SHA1(),  # noqa: S303 - the CertID hash OCSP clients expect
                cert_status=ocsp.OCSPCertStatus.GOOD,
                this_update=self.now - dt.timedelta(hours=1),
                next_update=self.now + dt.timedelta(days=7),
                revocation_time=None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.issuer)
            .sign(self.issuer_key, hashes.SHA256())
        )
        return response.public_bytes(serialization.Encoding.DER)


def write_weak_dh_params(path: Path) -> Path:
    """Write 1024-bit DH parameters (a server using them raises `tls.cipher.weak_dh`)."""
    params = dh.DHParameterNumbers(_OAKLEY_GROUP_2, 2).parameters()
    path.write_bytes(
        params.parameter_bytes(serialization.Encoding.PEM, serialization.ParameterFormat.PKCS3)
    )
    return path


def rsa_public_key_b64(bits: int) -> str:
    """A fresh RSA public key in DKIM's `p=` form (base64 DER SubjectPublicKeyInfo)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()
