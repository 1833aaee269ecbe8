"""Schedule expressions: five-field cron (`15 2 * * *`) or `@every 30s|15m|6h|1d`."""

from __future__ import annotations

import re

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

_EVERY = re.compile(r"^@every\s+(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# Cron counts weekdays from Sunday = 0 (7 too); APScheduler from Monday = 0. Use names.
_WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _weekday_names(field: str) -> str:
    return re.sub(
        r"\d+", lambda m: _WEEKDAYS[int(m.group())] if int(m.group()) <= 7 else m.group(), field
    )


def parse_schedule(
    expression: str, timezone: str = "Europe/Helsinki", jitter: int = 0
) -> BaseTrigger:
    """A trigger for `expression`; ValueError with the reason when it is not valid."""
    every = _EVERY.match(expression.strip())
    if every:
        amount, unit = int(every.group(1)), _UNITS[every.group(2)]
        if amount <= 0:
            raise ValueError("@every needs a positive interval")
        trigger = IntervalTrigger(**{unit: amount}, timezone=timezone)
        # Jitter spreads load; it must not swallow the interval itself.
        trigger.jitter = min(jitter, int(trigger.interval_length // 2)) or None
        return trigger
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"a cron expression has five fields (minute hour day month weekday), not {len(fields)}"
        )
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_weekday_names(weekday),
        timezone=timezone,
        jitter=jitter or None,
    )
