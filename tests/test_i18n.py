"""Catalogs: every domain has Finnish and Swedish for the same messages, none left empty."""

from __future__ import annotations

import datetime as dt
import re
from importlib import resources

import pytest
from babel.messages.pofile import read_po

from riskiturva.i18n import Translator, catalog, normalise_language, translator

LOCALE_DIR = resources.files("riskiturva") / "locale"
DOMAINS = sorted(
    {
        p.name.removesuffix(".po")
        for p in (LOCALE_DIR / "fi" / "LC_MESSAGES").iterdir()
        if p.name.endswith(".po")
    }
)


def _ids(language: str, domain: str) -> set[str]:
    """Every msgid of a catalog (a plural message by its singular)."""
    with (LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po").open("rb") as handle:
        return {str(m.id[0] if isinstance(m.id, tuple) else m.id) for m in read_po(handle) if m.id}


@pytest.mark.parametrize("domain", DOMAINS)
def test_finnish_and_swedish_translate_the_same_messages_completely(domain):
    assert _ids("fi", domain) == _ids("sv", domain)
    for language in ("fi", "sv"):
        assert set(catalog(language, domain)) == _ids(language, domain), (
            f"{language}/{domain} has untranslated or fuzzy messages"
        )


@pytest.mark.parametrize("language", ["fi", "sv"])
@pytest.mark.parametrize("domain", DOMAINS)
def test_no_message_is_defined_twice(language, domain):
    """Babel keeps one of two definitions silently; gettext's msgfmt refuses the file."""
    text = (LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po").read_text(encoding="utf-8")
    keys = re.findall(r'^((?:msgctxt .*\n)?msgid ".*"\n(?:".*"\n)*)', text, flags=re.MULTILINE)
    twice = sorted({key.strip() for key in keys if keys.count(key) > 1})
    assert not twice, twice


def test_plural_forms_follow_the_catalog():
    _ = translator("fi", "scoring")
    assert _.ngettext("{count} critical problem", "{count} critical problems", 1) == (
        "1 kriittinen ongelma"
    )
    assert _.ngettext("{count} critical problem", "{count} critical problems", 3) == (
        "3 kriittistä ongelmaa"
    )
    assert translator("en", "scoring").ngettext("{count} instance", "{count} instances", 2) == (
        "2 instances"
    )


def test_unknown_language_falls_back_to_finnish_and_english_is_the_source():
    assert normalise_language("de") == "fi"
    assert translator("en", "dashboard")("Findings") == "Findings"


def test_dates_and_numbers_follow_the_locale():
    day = dt.date(2026, 11, 5)
    assert Translator("fi", "dashboard").date(day) == "5.11.2026"
    # Finland-Swedish writes days like Finnish, not like Sweden (2026-11-05).
    assert Translator("sv", "dashboard").date(day) == "5.11.2026"
    assert Translator("en", "dashboard").date(day) == "2026-11-05"
    moment = dt.datetime(2026, 11, 5, 9, 7, tzinfo=dt.UTC)
    assert Translator("fi", "dashboard").datetime(moment) == "5.11.2026 9.07"
    assert Translator("sv", "dashboard").datetime(moment) == "5.11.2026 9.07"
    assert Translator("en", "dashboard").datetime(moment) == "2026-11-05 09:07"
    assert Translator("fi", "dashboard").number(1234.5, 1) == "1\xa0234,5"
    assert Translator("sv", "dashboard").number(1234.5, 1) == "1\xa0234,5"
