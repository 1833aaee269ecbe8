"""Web collector, offline: software named by headers, generator tags and CMS version files."""

from __future__ import annotations

import pytest

from collectors.web import software
from collectors.web.facts import HttpAnswer
from riskiturva.intel.software import Confidence


def answer(*headers: tuple[str, str]) -> HttpAnswer:
    return HttpAnswer("https://www.kunta.test/", 200, tuple((k.lower(), v) for k, v in headers))


def test_headers_name_the_server_php_and_drupal():
    found = {
        s.key: s
        for s in software.from_headers(
            [
                answer(
                    ("Server", "Apache/2.4.49 (Unix) OpenSSL/1.1.1k"),
                    ("X-Powered-By", "PHP/7.4.33"),
                    ("X-Generator", "Drupal 7 (http://drupal.org)"),
                )
            ]
        )
    }
    assert set(found) == {"apache:http_server", "openssl:openssl", "php:php", "drupal:drupal"}
    assert found["php:php"].evidence == "X-Powered-By: PHP/7.4.33"
    drupal = found["drupal:drupal"]
    assert (drupal.version, drupal.cycle, drupal.confidence) == ("", "7", Confidence.MEDIUM)


@pytest.mark.parametrize(
    ("html", "key", "version", "cycle"),
    [
        ('<meta name="generator" content="WordPress 6.4.2" />', "wordpress:wordpress", "6.4.2", ""),
        ("<META NAME='Generator' CONTENT='Drupal 10 (https://www.drupal.org)'>",
         "drupal:drupal", "", "10"),
        ('<meta name="generator" content="Joomla! - Open Source Content Management">',
         "joomla:joomla!", "", ""),
    ],
)  # fmt: skip
def test_generator_tags_name_the_cms(html, key, version, cycle):
    (found,) = software.from_page(f"<html><head>{html}</head></html>")
    assert (found.key, found.version, found.cycle) == (key, version, cycle)


def test_a_cms_version_file_is_read_only_for_the_cms_the_page_shows():
    page = '<link rel="stylesheet" href="/sites/default/files/css/x.css">'
    assert [c.name for c in software.cms_seen(page, [answer()])] == ["Drupal"]
    assert software.cms_seen("<h1>Kunta</h1>", [answer(("Server", "nginx"))]) == []
    (drupal,) = software.cms_seen(page, [])
    found = software.from_version_file(
        drupal, "\nDrupal 7.57, 2018-02-21\n-----\n", "https://uutiset.kunta.test/CHANGELOG.txt"
    )
    assert found is not None
    assert (found.version, found.confidence) == ("7.57", Confidence.HIGH)
    assert found.evidence.startswith("https://uutiset.kunta.test/CHANGELOG.txt: Drupal 7.57")


def test_hostile_or_broken_markup_names_nothing_and_does_not_fail():
    assert list(software.from_page("<meta name=generator content=<script>alert(1)</script>")) == []
    assert list(software.from_page("<<<>>>\x00")) == []
