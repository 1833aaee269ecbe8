"""The dashboard's words: the `dashboard` gettext domain and the reader's language."""

from __future__ import annotations

import flask

from riskiturva.auth import Viewer
from riskiturva.i18n import LANGUAGE_NAMES, Translator, normalise_language, translator

DOMAIN = "dashboard"
LANGUAGES = dict(LANGUAGE_NAMES)


def text(language: str | None) -> Translator:
    """`_ = text("sv")`; `_("Findings")`."""
    return translator(language, DOMAIN)


def language_of(viewer: Viewer) -> str:
    """The language chosen in this session, else the account's own."""
    return normalise_language(flask.session.get("lang") or viewer.language)
