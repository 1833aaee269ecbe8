"""Every word an alert says has a Finnish and a Swedish translation, and none is left over."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from riskiturva.i18n import catalog

ALERTS = Path(__file__).parent.parent / "riskiturva" / "alerts"


def _messages() -> set[str]:
    return {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ALERTS),
            method_map=[("**.py", "python"), ("templates/**.html", "jinja2")],
            keywords={"_": None},
        )
    }


@pytest.mark.parametrize("language", ["fi", "sv"])
def test_every_message_of_the_alerts_is_translated(language):
    messages = _messages()
    assert len(messages) > 40
    missing = sorted(messages - set(catalog(language, "alerts")))
    assert not missing, f"add to riskiturva/locale/{language}/LC_MESSAGES/alerts.po: {missing}"


def test_the_catalog_has_no_message_the_alerts_no_longer_use():
    unused = sorted(set(catalog("fi", "alerts")) - _messages())
    assert not unused, f"remove from the alerts catalogs: {unused}"
