"""Translations and locale formatting shared by the dashboard and the reports.

Source strings are English; Finnish (the default) and Swedish come from gettext catalogs in
`riskiturva/locale/<lang>/LC_MESSAGES/<domain>.po`, one domain per part (`dashboard`,
`reports`). Catalogs are read with Babel at first use — no compile step, nothing generated
to commit. Dates and numbers are formatted for fi_FI, sv_FI and en_GB.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from importlib import resources

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

LANGUAGES = ("fi", "sv", "en")
DEFAULT_LANGUAGE = "fi"
LOCALES = {"fi": "fi_FI", "sv": "sv_FI", "en": "en_GB"}
LANGUAGE_NAMES = {"fi": "suomi", "sv": "svenska", "en": "English"}


def normalise_language(language: str | None) -> str:
    """A supported language code; anything else falls back to Finnish."""
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


@cache
def catalog(language: str, domain: str) -> dict[str, str]:
    """msgid → translation for one language and domain (static package data, read once)."""
    if language == "en":
        return {}
    path = resources.files("riskiturva") / "locale" / language / "LC_MESSAGES" / f"{domain}.po"
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        parsed = read_po(handle, locale=LOCALES[language])
    return {
        str(message.id): str(message.string)
        for message in parsed
        if message.id and message.string and not message.fuzzy
    }


@dataclass(frozen=True)
class Translator:
    """`_ = Translator("fi", "dashboard")`; then `_("Findings")`, `_("{n} open", n=3)`."""

    language: str
    domain: str

    def __call__(self, message: str, /, **values: object) -> str:
        text = catalog(self.language, self.domain).get(message, message)
        return text.format(**values) if values else text

    @property
    def locale(self) -> Locale:
        return Locale.parse(LOCALES[self.language])

    def date(self, value: dt.date, format: str = "medium") -> str:
        return format_date(value, format=format, locale=LOCALES[self.language])

    def datetime(self, value: dt.datetime, format: str = "short") -> str:
        return format_datetime(value, format=format, locale=LOCALES[self.language])

    def number(self, value: float, digits: int = 0) -> str:
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=LOCALES[self.language])

    def percent(self, value: float) -> str:
        return format_percent(value, locale=LOCALES[self.language])


def translator(language: str | None, domain: str) -> Translator:
    return Translator(normalise_language(language), domain)
