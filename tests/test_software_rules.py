"""Vulnerability rules, offline: identified software judged against a real, dated store.

The store holds the lab's feeds (CISA KEV entries copied from the catalogue, condensed NVD
records, illustrative EPSS scores, endoflife.date cycles), dated 1 December 2026, and the
rules judge on that day, so the verdicts do not move with the calendar.
"""

from __future__ import annotations

import datetime as dt

import pytest

from riskiturva.intel import rules
from riskiturva.intel.software import (
    Confidence,
    Software,
    SoftwareSighting,
    cpe_name,
    from_product_tokens,
)
from tests.intel_data import DAY, snapshot, store
from tests.rule_checks import assert_evidence_labelled


@pytest.fixture(scope="module")
def intel(tmp_path_factory):
    return snapshot(store(tmp_path_factory.mktemp("intel")))


def software(
    key: str,
    version: str = "",
    confidence: Confidence = Confidence.HIGH,
    part: str = "a",
    **kw,
) -> Software:
    vendor, product = key.split(":")
    return Software(
        product=kw.pop("product", product),
        cpe=cpe_name(vendor, product, version, part=part),
        evidence=kw.pop("evidence", f"test: {product} {version}"),
        confidence=confidence,
        version=version,
        **kw,
    )


def judged(intel, *items: Software, allowed=rules.CHECK_IDS) -> dict[str, list]:
    sightings = [SoftwareSighting("192.0.2.7:80/tcp", s, "nmap -sV -p 80 192.0.2.7") for s in items]
    found: dict[str, list] = {}
    for draft in rules.judge_software(sightings, intel, allowed):
        assert_evidence_labelled(draft.check_id, draft.evidence)
        found.setdefault(draft.check_id, []).append(draft)
    return found


def cves(draft) -> list[str]:
    return [v["cve"] for v in draft.evidence["vulnerabilities"]]


# --- known-exploited vulnerabilities ------------------------------------------------------


def test_kev_used_by_ransomware_is_its_own_finding_and_the_rest_are_kev(intel):
    # Given Exim 4.89 (CVE-2018-6789: KEV, ransomware; CVE-2019-10149: KEV)
    found = judged(intel, software("exim:exim", "4.89"))
    # Then the ransomware CVE and the other KEV CVE are two findings, each with its evidence
    (ransomware,) = found[rules.KEV_RANSOMWARE]
    (kev,) = found[rules.KEV]
    assert cves(ransomware) == ["CVE-2018-6789"] and cves(kev) == ["CVE-2019-10149"]
    item = kev.evidence["vulnerabilities"][0]
    assert item["criteria"] == "cpe:2.3:a:exim:exim:*:*:*:*:*:*:*:*"
    assert item["range"] == ">= 4.87, <= 4.91"
    assert (item["kev_added"], item["ransomware"], item["cvss"]) == ("2022-01-10", False, 9.8)
    assert kev.evidence["data_as_of"] == {"nvd": "2026-12-01", "kev": "2026-12-01"}
    assert kev.subject == "192.0.2.7:80/tcp#exim:exim"
    assert kev.reproduce == "nmap -sV -p 80 192.0.2.7"


def test_fixed_version_and_other_branches_are_not_vulnerable(intel):
    assert judged(intel, software("exim:exim", "4.92.3")).keys() <= {rules.EOL}
    assert not judged(intel, software("apache:http_server", "2.4.62"))
    # 2.4.49 has CVE-2021-41773 and -42013, but not CVE-2019-0211 (2.4.17 – 2.4.38)
    (draft,) = judged(intel, software("apache:http_server", "2.4.49"))[rules.KEV_RANSOMWARE]
    assert cves(draft) == ["CVE-2021-41773", "CVE-2021-42013"]


def test_distribution_build_is_never_a_certain_kev_finding(intel):
    # Given Apache/2.4.38 (Debian): upstream 2.4.38 is in CVE-2019-0211's range (KEV)
    found = judged(
        intel,
        software("apache:http_server", "2.4.38", Confidence.LOW, distribution="Debian"),
    )
    # Then only "verify the package" is raised, with the command that shows the fix
    assert set(found) == {rules.KEV_UNCONFIRMED}
    (draft,) = found[rules.KEV_UNCONFIRMED]
    assert cves(draft) == ["CVE-2019-0211"]
    assert draft.evidence["confidence"] == "low"
    assert "apt-get changelog apache2 | grep -E CVE-2019-0211" in draft.evidence["verify"]


def test_backported_openssh_raises_nothing_though_upstream_cves_match(intel):
    # OpenSSH 9.2p1 Debian-2+deb12u3: CVE-2024-6387 and CVE-2023-38408 cover 9.2p1 upstream
    debian = software("openbsd:openssh", "9.2p1", Confidence.LOW, distribution="Debian 12")
    assert {m.cve_id for m in intel.vulnerabilities(debian)} == {"CVE-2023-38408", "CVE-2024-6387"}
    assert judged(intel, debian) == {}


def test_operating_system_from_a_banner_is_judged_by_its_lifecycle_only(intel):
    # NVD lists debian_linux:9.0 under CVE-2019-0211 and CVE-2018-15473 (KEV for 0211):
    # that says Debian shipped a vulnerable package, not that this system has it.
    debian9 = software("debian:debian_linux", "9", Confidence.MEDIUM, part="o")
    found = judged(intel, debian9)
    assert set(found) == {rules.EOL}
    assert found[rules.EOL][0].evidence["extended_support_until"] == "2022-07-01"


def test_high_epss_cves_are_reported_with_their_scores(intel):
    found = judged(intel, software("openbsd:openssh", "7.4"))
    (draft,) = found[rules.EPSS_HIGH]
    assert cves(draft) == ["CVE-2018-15473", "CVE-2023-38408"]  # highest score first
    assert draft.evidence["vulnerabilities"][0]["epss"] == pytest.approx(0.41)
    assert draft.evidence["epss_threshold"] == 0.1


# --- end of life (the intent of the former outdated-software table) -----------------------


@pytest.mark.parametrize(
    ("item", "product", "cycle"),
    [
        (software("apache:http_server", "2.2.34"), "Apache HTTP Server", "2.2"),
        (software("f5:nginx", "1.18.0"), "nginx", "1.18"),
        (software("igor_sysoev:nginx", "1.18.0"), "nginx", "1.18"),  # nmap's older vendor name
        (software("openssl:openssl", "1.0.2k"), "OpenSSL", "1.0.2"),
        (software("php:php", "7.4.33"), "PHP", "7.4"),
        (software("mysql:mysql", "5.7.44"), "MySQL", "5.7"),
        (software("exim:exim", "4.89"), "Exim", "4.89"),
        (software("drupal:drupal", cycle="7", confidence=Confidence.MEDIUM), "Drupal", "7"),
        # Not listed by endoflife.date any more, but 8.16 (newer) ended on 2025-04-15.
        (software("elasticsearch:elasticsearch", "8.15.3"), "Elasticsearch", "8.15.3"),
    ],
)
def test_versions_past_end_of_life_are_reported_with_their_dates(intel, item, product, cycle):
    (draft,) = judged(intel, item)[rules.EOL]
    assert (draft.evidence["product"], draft.evidence["cycle"]) == (product, cycle)
    ended = dt.date.fromisoformat(draft.evidence["support_ended"])
    assert ended < DAY.date()
    assert draft.evidence["lifecycle"].startswith("https://endoflife.date/")


@pytest.mark.parametrize(
    "item",
    [
        software("openbsd:openssh", "9.9p2"),  # no lifecycle data, no CVE in the store
        software("apache:http_server", "2.4.62"),
        software("f5:nginx", "1.30.2"),
        software("openssl:openssl", "3.5.1"),
        software("php:php", "8.4.10"),
        software("f5:nginx"),  # no version: no verdict
        software("mariadb:mariadb", "10.3.39"),  # MariaDB is not MySQL
        software("wordpress:wordpress", "7.1.0"),
    ],
)
def test_current_or_unknown_versions_raise_nothing(intel, item):
    assert judged(intel, item) == {}


def test_distribution_builds_are_not_judged_by_upstream_end_of_life(intel):
    # nginx 1.22 is past upstream's end of life, but Debian 12 still supports its package
    assert (
        judged(intel, software("f5:nginx", "1.22.1", Confidence.LOW, distribution="Debian")) == {}
    )


def test_only_extended_support_left_is_a_low_finding_not_end_of_life(intel):
    found = judged(intel, software("debian:debian_linux", "12", Confidence.MEDIUM, part="o"))
    (draft,) = found[rules.EXTENDED_ONLY]
    assert (draft.evidence["support_ended"], draft.evidence["extended_support_until"]) == (
        "2026-07-11",
        "2028-06-30",
    )


def test_supported_version_behind_a_newer_major_is_reported(intel):
    # Drupal 10.6 is supported until 16 December 2026; Drupal 11 is out
    (draft,) = judged(intel, software("drupal:drupal", "10.6.3"))[rules.MAJOR_BEHIND]
    assert "11.4" in draft.evidence["supported_newer"]


# --- freshness ----------------------------------------------------------------------------


def test_data_older_than_the_limit_leaves_its_checks_unjudged(tmp_path):
    old = store(tmp_path, as_of=DAY - dt.timedelta(days=30))
    refused = rules.unavailable_checks(snapshot(old, now=DAY))
    assert set(refused) == rules.CHECK_IDS
    assert "out of date: data as of 2026-11-01 (30 days old, the limit is 14)" in refused[rules.KEV]
    # A longer limit accepts the same data
    assert rules.unavailable_checks(snapshot(old, now=DAY, max_age_days=45)) == {}


def test_no_data_at_all_says_to_run_the_update():
    assert set(rules.unavailable_checks(None)) == rules.CHECK_IDS
    assert "riskiturva intel update" in rules.unavailable_checks(None)[rules.EOL]


def test_only_allowed_checks_are_judged(intel):
    exim = software("exim:exim", "4.89")
    assert set(judged(intel, exim, allowed={rules.EOL})) == {rules.EOL}
    assert judged(intel, exim, allowed=set()) == {}


# --- identification helpers shared by the collectors --------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Apache/2.4.49 (Unix)", [("apache:http_server", "2.4.49", "high", "")]),
        (
            "Apache/2.4.38 (Debian) OpenSSL/1.1.1n",
            [
                ("apache:http_server", "2.4.38", "low", "Debian"),
                ("openssl:openssl", "1.1.1n", "low", "Debian"),
            ],
        ),
        ("PHP/8.2.7-1~deb12u1", [("php:php", "8.2.7", "low", "Debian 12")]),
        ("nginx/1.18.0 (Ubuntu)", [("f5:nginx", "1.18.0", "low", "Ubuntu")]),
        ("Microsoft-IIS/8.5", [("microsoft:internet_information_services", "8.5", "high", "")]),
        ("cloudflare", []),
        ("nginx", []),
    ],
)  # fmt: skip
def test_server_headers_name_products_and_distribution_builds(header, expected):
    found = [
        (s.key, s.version, str(s.confidence), s.distribution)
        for s in from_product_tokens(header, "Server")
    ]
    assert found == expected


def test_the_same_software_on_two_subjects_is_two_findings_with_their_own_commands(intel):
    exim = software("exim:exim", "4.89")
    sightings = [
        SoftwareSighting("192.0.2.7:25/tcp", exim, "nmap -sV -p 25 192.0.2.7"),
        SoftwareSighting("192.0.2.8:25/tcp", exim, "nmap -sV -p 25 192.0.2.8"),
    ]
    drafts = [
        d
        for d in rules.judge_software(sightings, intel, rules.CHECK_IDS)
        if d.check_id == rules.EOL
    ]
    assert [(d.subject, d.reproduce, d.evidence["verify"][0]) for d in drafts] == [
        ("192.0.2.7:25/tcp#exim:exim", "nmap -sV -p 25 192.0.2.7", "nmap -sV -p 25 192.0.2.7"),
        ("192.0.2.8:25/tcp#exim:exim", "nmap -sV -p 25 192.0.2.8", "nmap -sV -p 25 192.0.2.8"),
    ]
