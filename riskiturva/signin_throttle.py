"""The sign-in throttle: slow guessing without letting anyone lock others out.

Failures are counted from the audit trail (`login.failed` rows), so the counts hold across
threads, processes and restarts. Two limits, each an exponential backoff rather than a
lock-out:

- **per (user name, client address)**: `attempts` failures within `window` are free; after
  them the client waits `backoff`, then twice as long after each further failure, never
  longer than `window`. Failures against one name never slow another name, and failures
  from one client never slow the same name from other clients.
- **per user name, from all clients** (a distributed attack on one account): after
  `account_attempts` failures within `account_window`, clients that are not *known* to the
  account wait on the same schedule, counted over the account's failures. A known client
  is a browser that signed in to the account before (a signed cookie, see
  `dashboard.security`), so the account's own person keeps signing in during an attack.

The client address is what the dashboard believes: the peer, or the address a trusted
reverse proxy reports (`settings.dashboard.trusted_proxies`). Refused attempts
(`login.throttled`) are audited but not counted, so waiting is always enough.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riskiturva.config import DashboardSettings
from riskiturva.models_auth import AuditEvent

FAILED = "login.failed"


@dataclass(frozen=True)
class ThrottlePolicy:
    attempts: int
    window: dt.timedelta
    backoff: dt.timedelta
    account_attempts: int
    account_window: dt.timedelta

    @classmethod
    def from_settings(cls, settings: DashboardSettings) -> ThrottlePolicy:
        return cls(
            attempts=settings.login_attempts,
            window=dt.timedelta(seconds=settings.login_window_seconds),
            backoff=dt.timedelta(seconds=settings.login_backoff_seconds),
            account_attempts=settings.login_account_attempts,
            account_window=dt.timedelta(hours=settings.login_account_window_hours),
        )

    def wait_after(self, failures: int, free: int) -> dt.timedelta:
        """How long to wait after the last of `failures`, when `free` of them cost nothing."""
        if failures < free:
            return dt.timedelta(0)
        # Doubling past 2**20 waits is beyond any window: stop the exponent growing.
        return min(self.backoff * (1 << min(failures - free, 20)), self.window)


@dataclass(frozen=True)
class Failures:
    count: int
    last: dt.datetime | None


def _failures(session: Session, name: str, since: dt.datetime, address: str | None) -> Failures:
    query = select(func.count(AuditEvent.id), func.max(AuditEvent.at)).where(
        AuditEvent.action == FAILED, AuditEvent.target == name, AuditEvent.at > since
    )
    if address is not None:
        query = query.where(AuditEvent.address == address)
    count, last = session.execute(query).one()
    return Failures(count, last)


def retry_after(
    session: Session,
    name: str,
    *,
    address: str,
    known_client: bool,
    now: dt.datetime,
    policy: ThrottlePolicy,
) -> dt.timedelta | None:
    """How long this client must wait before trying `name` again; None: it may try now."""
    waits = []
    pair = _failures(session, name, now - policy.window, address)
    if pair.last is not None:
        waits.append(pair.last + policy.wait_after(pair.count, policy.attempts) - now)
    if not known_client:
        account = _failures(session, name, now - policy.account_window, None)
        if account.last is not None:
            waits.append(
                account.last + policy.wait_after(account.count, policy.account_attempts) - now
            )
    wait = max(waits, default=dt.timedelta(0))
    return wait if wait > dt.timedelta(0) else None
