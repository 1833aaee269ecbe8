"""Pure rules: what one host's HTTP and HTTPS answers say about its web configuration."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

from collectors.web.facts import Fetch, HttpAnswer, WebFacts
from riskiturva.collector import FindingDraft, Rule, RuleSet

HSTS_MIN_AGE = 31_536_000  # one year, the line of CISA BOD 18-01
_VERSION = re.compile(r"\d+\.\d+")
_DISCLOSING_HEADERS = ("x-powered-by", "x-aspnet-version", "x-aspnetmvc-version")


def curl(facts: WebFacts, scheme: str, path: str = "/", head: bool = True) -> str:
    """A curl command that reaches the host at its address (`--resolve`, no DNS lookup)."""
    port = 443 if scheme == "https" else 80
    parts = [
        "curl",
        "-sI" if head else "-s",
        "--resolve",
        f"{facts.hostname}:{port}:{facts.address}",
    ]
    if scheme == "https" and facts.certificate_verified is False:
        parts.append("-k")
    parts.append(f"{scheme}://{facts.hostname}{path}")
    return shlex.join(parts)


def hsts_max_age(value: str) -> int | None:
    match = re.search(r"max-age\s*=\s*\"?(\d+)", value, re.IGNORECASE)
    return int(match.group(1)) if match else None


def _base(facts: WebFacts, answer: HttpAnswer | None = None) -> dict[str, Any]:
    evidence: dict[str, Any] = {"host": facts.hostname, "address": facts.address}
    if answer is not None:
        evidence |= {"url": answer.url, "status": answer.status}
    return evidence


def _redirects_to_https(fetch: Fetch) -> bool:
    return any(
        urljoin(a.url, a.header("location") or "").startswith("https://")
        for a in fetch.answers
        if a.header("location")
    )


def _redirect(facts: WebFacts) -> Iterator[FindingDraft]:
    first = facts.http.answers[0] if facts.http.answers else None
    if first is not None and not _redirects_to_https(facts.http):
        yield FindingDraft(
            "web.https.no_redirect",
            _base(facts, first) | {"location": first.header("location")},
            reproduce=curl(facts, "http"),
        )


def _headers(facts: WebFacts) -> Iterator[FindingDraft]:
    answer = facts.https.final
    if answer is None or not answer.url.startswith("https://"):
        return
    reproduce = curl(facts, "https")
    evidence = _base(facts, answer)
    hsts = answer.header("strict-transport-security")
    if hsts is None:
        yield FindingDraft("web.hsts.missing", evidence, reproduce=reproduce)
    else:
        age = hsts_max_age(hsts)
        if age is None or age < HSTS_MIN_AGE:
            yield FindingDraft(
                "web.hsts.short_max_age",
                evidence | {"strict_transport_security": hsts, "max_age": age,
                            "minimum": HSTS_MIN_AGE},
                reproduce=reproduce,
            )  # fmt: skip
    csp = answer.header("content-security-policy")
    if csp is None:
        yield FindingDraft("web.headers.csp_missing", evidence, reproduce=reproduce)
    xcto = answer.header("x-content-type-options")
    if (xcto or "").strip().lower() != "nosniff":
        yield FindingDraft(
            "web.headers.xcto_missing",
            evidence | {"x_content_type_options": xcto},
            reproduce=reproduce,
        )
    if answer.header("x-frame-options") is None and "frame-ancestors" not in (csp or "").lower():
        yield FindingDraft("web.headers.frame_options_missing", evidence, reproduce=reproduce)
    if answer.header("referrer-policy") is None:
        yield FindingDraft("web.headers.referrer_policy_missing", evidence, reproduce=reproduce)


def _cookie_problems(set_cookie: str) -> list[str]:
    attributes = {p.split("=", 1)[0].strip().lower() for p in set_cookie.split(";")[1:]}
    return [flag for flag in ("Secure", "HttpOnly") if flag.lower() not in attributes]


def _cookies_and_banner(facts: WebFacts) -> Iterator[FindingDraft]:
    answers = [*facts.https.answers, *facts.http.answers]
    cookies: dict[str, dict[str, Any]] = {}
    for answer in answers:
        for value in answer.all("set-cookie"):
            missing = _cookie_problems(value)
            name = value.split("=", 1)[0].strip()[:200]
            if missing and name not in cookies:
                cookies[name] = {"cookie": name, "url": answer.url, "missing": missing}
    if cookies:
        scheme = "https" if facts.https.answers else "http"
        yield FindingDraft(
            "web.cookies.insecure",
            _base(facts) | {"cookies": list(cookies.values())},
            reproduce=curl(facts, scheme) + " | grep -i '^set-cookie'",
        )
    disclosed: dict[str, str] = {}
    for answer in answers:
        server = answer.header("server")
        if server and _VERSION.search(server):
            disclosed.setdefault("server", server)
        for header in _DISCLOSING_HEADERS:
            if answer.header(header):
                disclosed.setdefault(header, answer.header(header) or "")
    if disclosed:
        scheme = "https" if facts.https.answers else "http"
        yield FindingDraft(
            "web.server.version_disclosure",
            _base(facts) | {"headers": disclosed},
            reproduce=curl(facts, scheme) + " | grep -iE '^(server|x-powered-by|x-aspnet)'",
        )


def _security_txt(facts: WebFacts) -> Iterator[FindingDraft]:
    found = facts.security_txt
    if found is None:
        return
    reproduce = curl(facts, "https", "/.well-known/security.txt", head=False)
    evidence = _base(facts) | {"status": found.status, "contact": list(found.contact),
                               "expires": found.expires_raw}  # fmt: skip
    if found.status != 200 or not found.contact or found.expires is None:
        yield FindingDraft("web.security_txt.missing", evidence, reproduce=reproduce)
    elif found.expires < facts.scanned_at:
        yield FindingDraft("web.security_txt.expired", evidence, reproduce=reproduce)


# Each rule with the ids it may emit; the collector's check ids are their union.
RULES: RuleSet[WebFacts] = RuleSet(
    (
        Rule(_redirect, frozenset({"web.https.no_redirect"})),
        Rule(
            _headers,
            frozenset(
                {
                    "web.hsts.missing",
                    "web.hsts.short_max_age",
                    "web.headers.csp_missing",
                    "web.headers.xcto_missing",
                    "web.headers.frame_options_missing",
                    "web.headers.referrer_policy_missing",
                }
            ),
        ),
        Rule(
            _cookies_and_banner,
            frozenset({"web.cookies.insecure", "web.server.version_disclosure"}),
        ),
        Rule(_security_txt, frozenset({"web.security_txt.missing", "web.security_txt.expired"})),
    )
)
CHECK_IDS = RULES.check_ids


def judge(facts: WebFacts) -> list[FindingDraft]:
    return RULES.judge(facts)
