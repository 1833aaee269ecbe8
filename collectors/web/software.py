"""Software a website names: `Server` and `X-Powered-By` headers, generator tags, CMS files.

Politeness: the front page is read once (it is fetched anyway for the headers), and a CMS's
version file is requested only when the page or the headers already show that CMS
(WordPress, Drupal, Joomla) — one extra request per CMS seen, never a path sweep.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

from collectors.web.facts import HttpAnswer
from riskiturva.intel.software import (
    Confidence,
    Software,
    cpe_name,
    from_product_tokens,
)

MAX_PAGE = 262_144  # bytes of a front page or a CMS file read
_VERSION_HEADERS = ("server", "x-powered-by")


@dataclass(frozen=True)
class Cms:
    name: str
    vendor: str
    product: str
    hints: tuple[str, ...]  # substrings of the page or headers that show the CMS
    generator: re.Pattern[str]  # over the generator tag: group 1 version, group 2 cycle
    version_file: str  # path that states the exact version
    version_pattern: re.Pattern[str]


CMSES: tuple[Cms, ...] = (
    Cms(
        "WordPress",
        "wordpress",
        "wordpress",
        ("/wp-content/", "/wp-includes/", "api.w.org"),
        re.compile(r"^WordPress\s+(\d+\.\d+(?:\.\d+)?)()", re.I),
        "/feed/",
        re.compile(r"<generator>https?://wordpress\.org/\?v=(\d+\.\d+(?:\.\d+)?)</generator>"),
    ),
    Cms(
        "Drupal",
        "drupal",
        "drupal",
        ("drupal.settings", "/sites/default/files/", "x-drupal-cache", "drupal-settings-json"),
        re.compile(r"^Drupal\s+(?:(\d+\.\d+(?:\.\d+)?)|(\d+))\b", re.I),
        "/CHANGELOG.txt",
        re.compile(r"^Drupal (\d+\.\d+(?:\.\d+)?), \d{4}-\d{2}-\d{2}", re.M),
    ),
    Cms(
        "Joomla!",
        "joomla",
        "joomla\\!",
        ("/media/jui/", "/media/system/js/", "joomla"),
        re.compile(r"^Joomla!?\s*(?:(\d+\.\d+(?:\.\d+)?)|(\d+(?:\.\d+)?))?", re.I),
        "/administrator/manifests/files/joomla.xml",
        re.compile(r"<version>(\d+\.\d+(?:\.\d+)?)</version>"),
    ),
)


class _Page(HTMLParser):
    """The `<meta name="generator">` contents of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.generators: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta":
            values = {k.lower(): (v or "") for k, v in attrs}
            if values.get("name", "").lower() == "generator" and values.get("content"):
                self.generators.append(values["content"].strip()[:200])


def generators(html: str) -> list[str]:
    page = _Page()
    try:
        page.feed(html)
        page.close()
    except (AssertionError, ValueError):  # malformed markup: keep what was read
        pass
    return page.generators


def from_headers(answers: Iterable[HttpAnswer]) -> Iterator[Software]:
    """Products and versions in `Server`/`X-Powered-By`, and `X-Generator` (Drupal)."""
    for answer in answers:
        for header in _VERSION_HEADERS:
            for value in answer.all(header):
                yield from from_product_tokens(value, header.title())
        for value in answer.all("x-generator"):
            yield from _from_generator(value, f"X-Generator: {value}")


def _from_generator(content: str, evidence: str) -> Iterator[Software]:
    for cms in CMSES:
        match = cms.generator.match(content)
        if match is None:
            continue
        version = match.group(1) or ""
        cycle = "" if version else (match.group(2) or "")
        yield Software(
            product=cms.name,
            cpe=cpe_name(cms.vendor, cms.product, version),
            evidence=evidence[:300],
            confidence=Confidence.MEDIUM,
            version=version,
            cycle=cycle,
        )


def from_page(html: str) -> Iterator[Software]:
    for content in generators(html):
        yield from _from_generator(content, f'<meta name="generator" content="{content}">')


def cms_seen(html: str, answers: Iterable[HttpAnswer]) -> list[Cms]:
    """The CMSs the page or headers show (their version files may then be read)."""
    text = html.lower() + " ".join(f"{k}: {v}".lower() for a in answers for k, v in a.headers)
    shown = {g.split()[0].lower().rstrip("!") for g in generators(html) if g.split()}
    return [
        cms
        for cms in CMSES
        if cms.name.lower().rstrip("!") in shown or any(h in text for h in cms.hints)
    ]


def from_version_file(cms: Cms, body: str, url: str) -> Software | None:
    match = cms.version_pattern.search(body)
    if match is None:
        return None
    version = match.group(1)
    return Software(
        product=cms.name,
        cpe=cpe_name(cms.vendor, cms.product, version),
        evidence=f"{url}: {match.group(0)[:120]}",
        confidence=Confidence.HIGH,
        version=version,
    )
