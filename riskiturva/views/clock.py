"""The reader's day: every face judges "today" (due dates, 30 days ago) in Finnish time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

TIMEZONE = ZoneInfo("Europe/Helsinki")


def local_day(now: dt.datetime) -> dt.date:
    """The day it is in Finland at `now` (an aware moment)."""
    return now.astimezone(TIMEZONE).date()
