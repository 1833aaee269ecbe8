"""Certificate Transparency search: pluggable sources, crt.sh's JSON interface first.

A search sends one of the organisation's domains to a third-party service, so the source
is off unless `ct` is listed in `[settings.discovery] sources`. The service's name is
resolved through the configured resolver like every other name; the request names
Riskiturva in its User-Agent, and searches are spaced by `min_interval_seconds`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol
from urllib.parse import urlencode, urlsplit

import urllib3

from riskiturva.config import CertificateTransparencySettings
from riskiturva.discovery.facts import CtEntry

MAX_RESPONSE = 32 * 1024 * 1024

Locate = Callable[[str], list[str]]  # a host name → its addresses (the configured resolver)


class CertificateLog(Protocol):
    def search(self, domain: str) -> Sequence[CtEntry]:
        """Certificates whose names are `domain` or under it; raises OSError on failure."""
        ...


class CtUnavailable(OSError):
    """The CT service did not answer usefully (timeout, error status, not JSON)."""


class CrtSh:
    """crt.sh's JSON interface: `GET /?q=%.example.fi&output=json`."""

    def __init__(
        self, settings: CertificateTransparencySettings, locate: Locate, user_agent: str
    ) -> None:
        self.settings, self.locate, self.user_agent = settings, locate, user_agent
        self._lock = threading.Lock()
        self._last = 0.0

    def _get(self, query: dict[str, str]) -> bytes:
        parts = urlsplit(self.settings.url)
        host = parts.hostname or ""
        addresses = self.locate(host)
        if not addresses:
            raise CtUnavailable(f"{host}: no address through the configured resolver")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        timeout = urllib3.Timeout(
            connect=min(10.0, self.settings.timeout), read=self.settings.timeout
        )
        pool: urllib3.HTTPConnectionPool
        if parts.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                addresses[0],
                port,
                timeout=timeout,
                retries=False,
                server_hostname=host,
                assert_hostname=host,
                cert_reqs="CERT_REQUIRED",
            )
        else:
            pool = urllib3.HTTPConnectionPool(addresses[0], port, timeout=timeout, retries=False)
        path = (parts.path or "/") + "?" + urlencode(query)
        try:
            response = pool.request(
                "GET",
                path,
                headers={
                    "Host": host if parts.port is None else f"{host}:{port}",
                    "User-Agent": self.user_agent,
                    "Accept": "application/json",
                },
                preload_content=False,
                redirect=False,
            )
            body = response.read(MAX_RESPONSE + 1)
            response.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise CtUnavailable(f"{host}: {exc}") from exc
        finally:
            pool.close()
        if response.status != 200:
            raise CtUnavailable(f"{host} answered HTTP {response.status}")
        if len(body) > MAX_RESPONSE:
            raise CtUnavailable(f"{host}: answer larger than {MAX_RESPONSE} bytes")
        return body

    def search(self, domain: str) -> list[CtEntry]:
        with self._lock:  # one search at a time, spaced: the service is shared
            wait = self._last + self.settings.min_interval_seconds - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                body = self._get({"q": f"%.{domain}", "output": "json"})
            finally:
                self._last = time.monotonic()
        return parse_crtsh(body)


def parse_crtsh(body: bytes) -> list[CtEntry]:
    """crt.sh's JSON rows → entries, one per certificate (rows repeat per log entry)."""
    try:
        rows = json.loads(body)
    except ValueError as exc:
        raise CtUnavailable(f"the CT answer is not JSON: {exc}") from exc
    if not isinstance(rows, list):
        raise CtUnavailable("the CT answer is not a list of certificates")
    entries: dict[int, CtEntry] = {}
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("id"), int):
            continue
        names = {
            n.strip().lower()
            for field in ("common_name", "name_value")
            for n in str(row.get(field) or "").split("\n")
            if n.strip()
        }
        entries[row["id"]] = CtEntry(
            id=row["id"],
            names=tuple(sorted(names)),
            issuer=str(row.get("issuer_name", ""))[:300],
            not_before=str(row.get("not_before", ""))[:40],
            not_after=str(row.get("not_after", ""))[:40],
        )
    return [entries[i] for i in sorted(entries)]


def certificate_log(
    settings: CertificateTransparencySettings, locate: Locate, user_agent: str
) -> CertificateLog:
    """The configured source (crt.sh is the one there is)."""
    if settings.source == "crtsh":
        return CrtSh(settings, locate, user_agent)
    raise ValueError(f"unknown CT source {settings.source!r}")
