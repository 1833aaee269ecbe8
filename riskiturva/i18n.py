"""Translations and locale formatting shared by the dashboard and the reports.

Source strings are English; Finnish (the default) and Swedish come from gettext catalogs in
`riskiturva/locale/<lang>/LC_MESSAGES/<domain>.po`, one domain per part (`dashboard`,
`reports`, `scoring`). Catalogs are read with Babel at first use and compiled in memory for
the standard `gettext` (so plural forms follow each catalog's `Plural-Forms`) — no compile
step, nothing generated to commit. Numbers and month names are formatted for fi_FI, sv_FI
(Finland-Swedish) and en_GB; dates and times use patterns of our own (`DATE_PATTERNS`,
`TIME_PATTERNS`), so that a CLDR update cannot change how a report or page writes a day:
Babel 2.19 (CLDR 47) moved sv_FI's "short" date from 2026-10-31 to 31.10.2026, which is
what Finland-Swedish readers expect and what we now write deliberately.
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

LANGUAGES = ("fi", "sv", "en")
DEFAULT_LANGUAGE = "fi"
LOCALES = {"fi": "fi_FI", "sv": "sv_FI", "en": "en_GB"}
LANGUAGE_NAMES = {"fi": "suomi", "sv": "svenska", "en": "English"}
# How each language writes a day and a time of day in Finland (CLDR pattern syntax).
# Finnish and Finland-Swedish: 31.10.2026 and 14.05 (Kotimaisten kielten keskus's
# recommendations for both languages); English: ISO 8601, 2026-10-31 and 14:05, unambiguous
# to every reader (and no CLDR month abbreviation, which changes between releases: Sep/Sept).
DATE_PATTERNS = {"fi": "d.M.yyyy", "sv": "d.M.yyyy", "en": "yyyy-MM-dd"}
TIME_PATTERNS = {"fi": "H.mm", "sv": "H.mm", "en": "HH:mm"}


def normalise_language(language: str | None) -> str:
    """A supported language code; anything else falls back to Finnish."""
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def _read(language: str, domain: str) -> Catalog | None:
    path = resources.files("riskiturva") / "locale" / language / "LC_MESSAGES" / f"{domain}.po"
    if language == "en" or not path.is_file():
        return None
    with path.open("rb") as handle:
        return read_po(handle, locale=LOCALES[language])


@cache
def catalog(language: str, domain: str) -> dict[str, str]:
    """msgid → translation for one language and domain (a plural message by its singular
    msgid and first form); static package data, read once."""
    parsed = _read(language, domain)
    if parsed is None:
        return {}
    translated = {}
    for message in parsed:
        if not message.id or not message.string or message.fuzzy:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        value = message.string[0] if isinstance(message.string, tuple) else message.string
        if value:
            translated[str(key)] = str(value)
    return translated


@cache
def _translations(language: str, domain: str) -> gettext.NullTranslations:
    """The catalog compiled in memory (fuzzy and empty entries left out)."""
    parsed = _read(language, domain)
    if parsed is None:
        return gettext.NullTranslations()
    compiled = io.BytesIO()
    write_mo(compiled, parsed)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


@dataclass(frozen=True)
class Translator:
    """`_ = Translator("fi", "dashboard")`; then `_("Findings")`, `_("{n} open", n=3)`."""

    language: str
    domain: str

    def __call__(self, message: str, /, **values: object) -> str:
        text = _translations(self.language, self.domain).gettext(message)
        return text.format(**values) if values else text

    def ngettext(self, singular: str, plural: str, count: int, /, **values: object) -> str:
        """`_.ngettext("{count} problem", "{count} problems", n)`: the form for `count`."""
        text = _translations(self.language, self.domain).ngettext(singular, plural, count)
        return text.format(count=count, **values)

    @property
    def locale(self) -> Locale:
        return Locale.parse(LOCALES[self.language])

    def date(self, value: dt.date) -> str:
        """A day as this language writes it in Finland (31.10.2026; 2026-10-31 in English)."""
        return format_date(value, format=DATE_PATTERNS[self.language], locale=self.locale)

    def datetime(self, value: dt.datetime) -> str:
        """A day and a time of day (31.10.2026 14.05), in `value`'s own time zone."""
        pattern = f"{DATE_PATTERNS[self.language]} {TIME_PATTERNS[self.language]}"
        return format_datetime(value, format=pattern, tzinfo=value.tzinfo, locale=self.locale)

    def number(self, value: float, digits: int = 0) -> str:
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=LOCALES[self.language])

    def percent(self, value: float) -> str:
        return format_percent(value, locale=LOCALES[self.language])


def translator(language: str | None, domain: str) -> Translator:
    return Translator(normalise_language(language), domain)
