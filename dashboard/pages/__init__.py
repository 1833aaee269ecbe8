"""One module per page. Each has a `PAGE` (path pattern, permission, layout function) and,
if it has callbacks, a `register(secure, services)`. `render` is the router: it resolves
the path, applies the page's permission, and lets the page look up what the path names
within the viewer's visible organisations."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dashboard.components import PageContext, not_found, refused
from dashboard.security import Permission, allowed


@dataclass(frozen=True)
class Page:
    name: str
    pattern: str  # a regular expression over the path, with named groups for its parameters
    permission: Permission
    layout: Callable[..., Any]  # layout(context, **groups)

    def match(self, path: str) -> dict[str, str] | None:
        found = re.fullmatch(self.pattern, path)
        return None if found is None else found.groupdict()


def all_pages() -> tuple[Page, ...]:
    from dashboard.pages import (
        alerts,
        assets,
        audit,
        exceptions,
        finding,
        findings,
        organisation,
        portfolio,
        proposals,
        reports,
        scans,
        scoring,
        tokens,
    )

    return (
        portfolio.PAGE,
        audit.PAGE,
        organisation.PAGE,
        findings.PAGE,
        finding.PAGE,
        assets.PAGE,
        assets.ASSET_PAGE,
        proposals.PAGE,
        scoring.PAGE,
        exceptions.PAGE,
        scans.PAGE,
        alerts.PAGE,
        alerts.PORTFOLIO_PAGE,
        tokens.PAGE,
        reports.PAGE,
        reports.PORTFOLIO_PAGE,
    )


def page_modules() -> tuple[Any, ...]:
    """The pages with callbacks."""
    from dashboard.pages import audit, exceptions, finding, findings, proposals, reports, tokens

    return (findings, finding, exceptions, proposals, audit, tokens, reports)


def known_path(path: str) -> bool:
    """A path some page answers (the home page included), whoever asks."""
    return path == "/" or any(page.match(path) is not None for page in all_pages())


def render(context: PageContext, path: str) -> Any:
    for page in all_pages():
        params = page.match(path)
        if params is None:
            continue
        if not allowed(context.viewer, page.permission):
            # Management viewers know the detail pages exist; the audit trail is not there
            # for anyone but partner administrators.
            if page.permission is Permission.DETAILS:
                return refused(context)
            return not_found(context)
        return page.layout(context, **params)
    return not_found(context)
