"""`riskiturva intel update` (the feeds over HTTP) and `riskiturva intel import DIR` (files).

Downloads go through the configured resolver like every other connection: the feed's host
name is resolved with dnspython, the connection goes to that address with SNI and `Host`
set to the name, and certificates are verified against the system's CAs plus
`settings.tls.extra_ca_files`. Each source is parsed completely before one transaction
replaces its data, so a failed or partial download leaves the previous data in place.

NVD: the first update pages through the whole CVE API 2.0 (2,000 CVEs a request, with the
delay NVD asks for); later ones ask only for CVEs modified since the data's date
(`lastModStartDate`), as long as that is within NVD's 120-day window.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import urllib3
from sqlalchemy.orm import Session, sessionmaker

from riskiturva.config import Settings
from riskiturva.intel.feeds import (
    EolProduct,
    FeedError,
    NvdPage,
    Source,
    eol_as_of,
    parse_eol_product,
    parse_epss,
    parse_kev,
    parse_nvd,
)
from riskiturva.intel.store import (
    NvdWriter,
    save_eol,
    save_epss,
    save_kev,
    source_states,
)
from riskiturva.resolver import DnsFailure, Resolver

MAX_FEED_BYTES = 512 * 1024 * 1024
MAX_REDIRECTS = 5
NVD_INCREMENTAL_DAYS = 119  # NVD allows lastModified ranges of at most 120 days

Progress = Callable[[str], None]


class FeedFetchError(RuntimeError):
    """A feed could not be downloaded (the message says which and why)."""

    def __init__(self, message: str, status: int | None = None):
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class UpdateResult:
    source: Source
    records: int
    data_as_of: dt.datetime
    origin: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class FeedClient:
    """GET over HTTP(S) to the address the configured resolver gives, redirects included."""

    resolver: Resolver
    user_agent: str
    timeout: float
    ca_files: tuple[Path, ...] = ()

    def get(self, url: str, headers: dict[str, str] | None = None) -> bytes:
        for _ in range(MAX_REDIRECTS + 1):
            status, location, data = self._request(url, headers or {})
            if status in (301, 302, 303, 307, 308) and location:
                url = urljoin(url, location)
                continue
            if status != 200:
                raise FeedFetchError(f"{url}: HTTP {status}", status)
            return data
        raise FeedFetchError(f"{url}: too many redirects")

    def _request(self, url: str, headers: dict[str, str]) -> tuple[int, str | None, bytes]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FeedFetchError(f"not an http(s) URL: {url}")
        name = parts.hostname
        address = name if _is_address(name) else self._address(name)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        timeout = urllib3.Timeout(connect=min(self.timeout, 30.0), read=self.timeout)
        pool: urllib3.HTTPConnectionPool
        if parts.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                address,
                port,
                timeout=timeout,
                retries=False,
                server_hostname=name,
                assert_hostname=name,
                ssl_context=self._ssl_context(),
            )
        else:
            pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = name if parts.port is None else f"{name}:{port}"
        try:
            response = pool.request(
                "GET",
                path,
                headers={"Host": host, "User-Agent": self.user_agent, "Accept": "*/*", **headers},
                redirect=False,
                preload_content=False,
            )
            data = response.read(MAX_FEED_BYTES + 1, decode_content=True)
            response.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise FeedFetchError(f"{url}: {exc}") from exc
        finally:
            pool.close()
        if len(data) > MAX_FEED_BYTES:
            raise FeedFetchError(f"{url}: larger than {MAX_FEED_BYTES} bytes")
        return response.status, response.headers.get("location"), data

    def _address(self, name: str) -> str:
        try:
            addresses = self.resolver.addresses(name)
        except DnsFailure as exc:
            raise FeedFetchError(f"{name}: {exc}") from exc
        if not addresses:
            raise FeedFetchError(f"{name} has no A or AAAA records")
        return addresses[0]

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        for path in self.ca_files:
            context.load_verify_locations(cafile=str(path))
        return context


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


def update(
    sessions: sessionmaker[Session],
    settings: Settings,
    client: FeedClient,
    *,
    now: dt.datetime,
    sources: Iterable[Source] = tuple(Source),
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[UpdateResult]:
    """Download and store each selected source; raises on the first that fails."""
    intel = settings.intel
    say = progress or (lambda _message: None)
    results = []
    for source in sources:
        say(f"{source.label}: downloading")
        if source is Source.KEV:
            catalog = parse_kev(client.get(intel.kev_url))
            with sessions.begin() as session:
                count = save_kev(session, catalog, origin=intel.kev_url, now=now)
            results.append(UpdateResult(source, count, catalog.released, intel.kev_url))
        elif source is Source.EPSS:
            scores = parse_epss(client.get(intel.epss_url))
            with sessions.begin() as session:
                count = save_epss(session, scores, origin=intel.epss_url, now=now)
            results.append(UpdateResult(source, count, scores.score_date, intel.epss_url))
        elif source is Source.EOL:
            products, unknown = [], []
            for name in intel.eol_products:
                try:
                    products.append(
                        parse_eol_product(client.get(intel.eol_url.format(product=name)))
                    )
                except FeedFetchError as exc:
                    if exc.status != 404:
                        raise
                    unknown.append(name)  # not (or no longer) an endoflife.date product
            if not products:
                raise FeedFetchError(f"{intel.eol_url}: none of the products exists")
            as_of = eol_as_of(products, fetched=now)
            with sessions.begin() as session:
                count = save_eol(session, products, as_of=as_of, origin=intel.eol_url, now=now)
            results.append(UpdateResult(source, count, as_of, intel.eol_url, {"unknown": unknown}))
        else:
            results.append(_update_nvd(sessions, settings, client, now, say, sleep))
        done = results[-1]
        say(f"{source.label}: {done.records} records, data as of {done.data_as_of:%Y-%m-%d}")
    return results


def _update_nvd(
    sessions: sessionmaker[Session],
    settings: Settings,
    client: FeedClient,
    now: dt.datetime,
    say: Progress,
    sleep: Callable[[float], None],
) -> UpdateResult:
    intel = settings.intel
    with sessions() as session:
        previous = source_states(session).get(Source.NVD)
    since = previous.data_as_of if previous else None
    full = since is None or (now - since).days >= NVD_INCREMENTAL_DAYS
    headers = {}
    if intel.nvd_api_key_file is not None:
        key_path = intel.nvd_api_key_file
        if not key_path.is_absolute():
            key_path = settings.data_dir / key_path
        headers["apiKey"] = key_path.read_text(encoding="utf-8").strip()
    query: dict[str, Any] = {"resultsPerPage": intel.nvd_page_size}
    if not full:
        assert since is not None
        query |= {
            "lastModStartDate": _iso(since - dt.timedelta(hours=1)),
            "lastModEndDate": _iso(now),
        }
    with sessions.begin() as session:
        writer = NvdWriter(session, replace=full)
        start, total, first_timestamp = 0, None, None
        while total is None or start < total:
            if start:
                sleep(intel.nvd_request_delay)
            url = f"{intel.nvd_url}?{urlencode(query | {'startIndex': start})}"
            page: NvdPage = parse_nvd(client.get(url, headers))
            if total is not None and page.total != total:
                raise FeedError(Source.NVD, "the result set changed while paging; try again")
            total = page.total
            first_timestamp = first_timestamp or page.timestamp
            writer.add(page)
            if not page.cves:
                break
            start += len(page.cves)
            say(f"NVD: {min(start, total)}/{total} CVEs")
        assert first_timestamp is not None
        writer.finish(as_of=first_timestamp, now=now, origin=intel.nvd_url)
    return UpdateResult(
        Source.NVD,
        writer.records,
        first_timestamp,
        intel.nvd_url,
        {"full": full, "since": since.isoformat() if since and not full else None},
    )


# --- offline import ----------------------------------------------------------------------

KEV_FILES = ("known_exploited_vulnerabilities*.json", "known_exploited_vulnerabilities*.json.gz")
NVD_FILES = ("nvdcve-2.0-*.json", "nvdcve-2.0-*.json.gz", "nvd/*.json", "nvd/*.json.gz")
EPSS_FILES = ("epss_scores-*.csv", "epss_scores-*.csv.gz")
EOL_FILES = ("endoflife/*.json",)


def _files(directory: Path, patterns: Iterable[str]) -> list[Path]:
    return sorted({p for pattern in patterns for p in directory.glob(pattern) if p.is_file()})


def import_directory(
    sessions: sessionmaker[Session], directory: Path, *, now: dt.datetime
) -> list[UpdateResult]:
    """Import the feed files found in `directory` (air-gapped sites); see docs.

    Recognised names: `known_exploited_vulnerabilities.json`; `nvdcve-2.0-*.json[.gz]` or
    `nvd/*.json` (NVD 2.0 feed files or saved CVE API pages: together they replace the NVD
    data); `epss_scores-YYYY-MM-DD.csv[.gz]` (the newest is used); `endoflife/<product>.json`
    (API v1 product responses). Sources without files are left as they are.
    """
    if not directory.is_dir():
        raise FeedFetchError(f"{directory} is not a directory")
    origin = str(directory.resolve())
    results = []
    kev_files = _files(directory, KEV_FILES)
    if kev_files:
        catalog = parse_kev(kev_files[-1].read_bytes())
        with sessions.begin() as session:
            count = save_kev(session, catalog, origin=origin, now=now)
        results.append(UpdateResult(Source.KEV, count, catalog.released, origin))
    nvd_files = _files(directory, NVD_FILES)
    if nvd_files:
        with sessions.begin() as session:
            writer = NvdWriter(session, replace=True)
            for path in nvd_files:
                writer.add(parse_nvd(path.read_bytes()))
            assert writer.oldest_timestamp is not None
            writer.finish(as_of=writer.oldest_timestamp, now=now, origin=origin)
        results.append(UpdateResult(Source.NVD, writer.records, writer.oldest_timestamp, origin))
    epss_files = _files(directory, EPSS_FILES)
    if epss_files:
        scores = max((parse_epss(p.read_bytes()) for p in epss_files), key=lambda s: s.score_date)
        with sessions.begin() as session:
            count = save_epss(session, scores, origin=origin, now=now)
        results.append(UpdateResult(Source.EPSS, count, scores.score_date, origin))
    eol_files = _files(directory, EOL_FILES)
    if eol_files:
        products: list[EolProduct] = [parse_eol_product(p.read_bytes()) for p in eol_files]
        as_of = eol_as_of(products)
        with sessions.begin() as session:
            count = save_eol(session, products, as_of=as_of, origin=origin, now=now)
        results.append(UpdateResult(Source.EOL, count, as_of, origin))
    if not results:
        raise FeedFetchError(
            f"{directory}: no feed files found (known_exploited_vulnerabilities.json, "
            "nvdcve-2.0-*.json, epss_scores-*.csv.gz, endoflife/<product>.json)"
        )
    return results


def client_for(settings: Settings) -> FeedClient:
    return FeedClient(
        resolver=Resolver(settings.resolver),
        user_agent=settings.user_agent,
        timeout=settings.intel.timeout,
        ca_files=settings.tls.extra_ca_files,
    )
