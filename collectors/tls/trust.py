"""The trust anchors both collectors validate against: Mozilla's store plus configured CA files."""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.verification import Store
from sslyze.plugins.certificate_info.trust_stores.trust_store_repository import (
    TrustStoresRepository,
)


def mozilla_store_path() -> Path:
    """Mozilla's root store as shipped (and dated) by sslyze."""
    return TrustStoresRepository.get_default().get_main_store().path


@dataclass(frozen=True)
class TrustAnchors:
    """Mozilla's roots and any extra CA files (e.g. an organisation's internal CA)."""

    pem_files: tuple[Path, ...]

    @classmethod
    def from_settings(cls, extra_ca_files: Sequence[Path]) -> TrustAnchors:
        return cls((mozilla_store_path(), *extra_ca_files))

    @property
    def extra_files(self) -> tuple[Path, ...]:
        return self.pem_files[1:]

    def certificates(self) -> list[x509.Certificate]:
        found: list[x509.Certificate] = []
        with warnings.catch_warnings():
            # Mozilla's store still holds a root with a non-positive serial number.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            for path in self.pem_files:
                found.extend(x509.load_pem_x509_certificates(path.read_bytes()))
        return found

    def store(self) -> Store:
        return Store(self.certificates())

    def combined_pem(self, path: Path) -> Path:
        """Write the extra CA files as one PEM file (sslyze takes a single custom CA file)."""
        path.write_bytes(b"\n".join(p.read_bytes().strip() for p in self.extra_files) + b"\n")
        return path

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts exactly these anchors."""
        context = ssl.create_default_context(cafile=str(self.pem_files[0]))
        for path in self.extra_files:
            context.load_verify_locations(cafile=str(path))
        return context
