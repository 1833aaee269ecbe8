"""Every word the dashboard shows has a Finnish and a Swedish translation."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from riskiturva.i18n import catalog

DASHBOARD = Path(__file__).parent.parent / "dashboard"


def _messages() -> set[str]:
    return {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(DASHBOARD), method_map=[("**.py", "python")], keywords={"_": None}
        )
    }


@pytest.mark.parametrize("language", ["fi", "sv"])
def test_every_message_in_the_dashboard_code_is_translated(language):
    messages = _messages()
    assert len(messages) > 100
    missing = sorted(messages - set(catalog(language, "dashboard")))
    assert not missing, f"add to riskiturva/locale/{language}/LC_MESSAGES/dashboard.po: {missing}"


def test_the_catalog_has_no_message_the_code_no_longer_uses():
    unused = sorted(set(catalog("fi", "dashboard")) - _messages())
    assert not unused, f"remove from the dashboard catalogs: {unused}"
