"""The web rules, offline, on small fact objects."""

from __future__ import annotations

import datetime as dt
import tomllib
from importlib import resources

import pytest

from collectors.web import WebCollector, rules
from collectors.web._fetch import parse_security_txt
from collectors.web.facts import Fetch, HttpAnswer, SecurityTxt, WebFacts
from riskiturva.checks import load_registry
from tests.rule_checks import checked

NOW = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
HARDENED = (
    ("strict-transport-security", "max-age=63072000; includeSubDomains"),
    ("content-security-policy", "default-src 'self'; frame-ancestors 'none'"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("server", "nginx"),
)
REDIRECT = HttpAnswer("http://www.kunta.test/", 301, (("location", "https://www.kunta.test/"),))
VALID_TXT = SecurityTxt(200, ("mailto:tietoturva@kunta.test",), NOW + dt.timedelta(days=90), "x")


def web(headers=HARDENED, http=(REDIRECT,), security_txt=VALID_TXT, http_error=None) -> WebFacts:
    return WebFacts(
        hostname="www.kunta.test",
        address="127.60.9.10",
        scanned_at=NOW,
        http=Fetch(tuple(http), error=http_error),
        https=Fetch((HttpAnswer("https://www.kunta.test/", 200, tuple(headers)),)),
        certificate_verified=True,
        security_txt=security_txt,
    )


def without(name: str) -> tuple[tuple[str, str], ...]:
    return tuple(h for h in HARDENED if h[0] != name)


def ids(facts: WebFacts) -> set[str]:
    return {d.check_id for d in checked(rules.judge, facts)}


def test_hardened_site_raises_nothing():
    assert ids(web()) == set()


def test_https_only_site_with_port_80_closed_is_not_missing_a_redirect():
    assert ids(web(http=(), http_error="refused")) == set()


def test_plain_http_content_is_no_redirect_with_a_curl_that_needs_no_dns():
    content = HttpAnswer("http://www.kunta.test/", 200, ())
    (draft,) = checked(rules.judge, web(http=(content,)))
    assert draft.check_id == "web.https.no_redirect"
    assert draft.reproduce == (
        "curl -sI --resolve www.kunta.test:80:127.60.9.10 http://www.kunta.test/"
    )


def test_redirect_to_http_elsewhere_is_still_no_redirect():
    elsewhere = HttpAnswer("http://www.kunta.test/", 302, (("location", "/fi/"),))
    assert ids(web(http=(elsewhere, HttpAnswer("http://www.kunta.test/fi/", 200, ())))) == {
        "web.https.no_redirect"
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("max-age=31536000", set()),
        ('max-age="31536000"; includeSubDomains', set()),
        ("max-age=86400", {"web.hsts.short_max_age"}),
        ("includeSubDomains", {"web.hsts.short_max_age"}),
    ],
)
def test_hsts_max_age_must_be_a_year(value, expected):
    headers = (*without("strict-transport-security"), ("strict-transport-security", value))
    assert ids(web(headers=headers)) == expected


@pytest.mark.parametrize(
    ("removed", "check"),
    [
        ("strict-transport-security", "web.hsts.missing"),
        ("x-content-type-options", "web.headers.xcto_missing"),
        ("referrer-policy", "web.headers.referrer_policy_missing"),
    ],
)
def test_missing_header(removed, check):
    assert ids(web(headers=without(removed))) == {check}


def test_csp_missing_and_frame_ancestors_counts_as_frame_protection():
    assert ids(web(headers=without("content-security-policy"))) == {"web.headers.csp_missing"}
    assert ids(web(headers=without("x-frame-options"))) == set()
    neither = tuple(h for h in without("x-frame-options") if h[0] != "content-security-policy")
    assert ids(web(headers=neither)) == {
        "web.headers.csp_missing",
        "web.headers.frame_options_missing",
    }


def test_cookie_without_flags_is_reported_once_with_the_missing_flags():
    headers = (
        *HARDENED,
        ("set-cookie", "PHPSESSID=abc; path=/"),
        ("set-cookie", "ok=1; Secure; HttpOnly"),
    )
    (draft,) = checked(rules.judge, web(headers=headers))
    assert draft.check_id == "web.cookies.insecure"
    assert draft.evidence["cookies"] == [
        {"cookie": "PHPSESSID", "url": "https://www.kunta.test/", "missing": ["Secure", "HttpOnly"]}
    ]


@pytest.mark.parametrize(
    ("header", "disclosed"),
    [(("server", "nginx/1.22.1"), True), (("server", "nginx"), False),
     (("x-powered-by", "PHP/8.1"), True)],
)  # fmt: skip
def test_version_disclosure(header, disclosed):
    headers = (*without("server"), header)
    assert ("web.server.version_disclosure" in ids(web(headers=headers))) is disclosed


def test_security_txt_missing_expired_and_incomplete():
    assert ids(web(security_txt=SecurityTxt(404, (), None, None))) == {"web.security_txt.missing"}
    expired = SecurityTxt(200, ("mailto:x@kunta.test",), NOW - dt.timedelta(days=1), "x")
    assert ids(web(security_txt=expired)) == {"web.security_txt.expired"}
    no_expiry = SecurityTxt(200, ("mailto:x@kunta.test",), None, None)
    assert ids(web(security_txt=no_expiry)) == {"web.security_txt.missing"}


def test_security_txt_parser_keeps_hostile_bytes_as_data():
    body = (
        b"# c\nContact: mailto:a@b.test\nExpires: 2027-01-01T00:00:00Z\n\xff\xfe<script>x</script>"
    )
    parsed = parse_security_txt(200, body)
    assert parsed.contact == ("mailto:a@b.test",)
    assert parsed.expires == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert parse_security_txt(200, b"Expires: not a date\n").expires is None
    assert parse_security_txt(404, b"Contact: x").contact == ()


def test_check_ids_match_the_registry_both_ways():
    declared = set(tomllib.loads(
        (resources.files("riskiturva") / "check_data" / "web.toml").read_text(encoding="utf-8")
    ))  # fmt: skip
    assert set(WebCollector.check_ids) == declared
    assert declared <= set(load_registry())


# Facts that, between them, raise every check the web collector declares
# (tests/test_rule_coverage.py holds every collector to this).
PLANTED = [
    web(
        headers=(
            ("strict-transport-security", "max-age=600"),
            ("server", "nginx/1.22.1"),
            ("set-cookie", "PHPSESSID=abc; path=/"),
        ),
        http=(HttpAnswer("http://www.kunta.test/", 200, ()),),
        security_txt=SecurityTxt(404, (), None, None),
    ),
    web(
        headers=(),
        security_txt=SecurityTxt(200, ("mailto:a@kunta.test",), NOW - dt.timedelta(days=1), "x"),
    ),
]
