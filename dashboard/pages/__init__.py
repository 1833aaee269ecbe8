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
from dashboard.security import Permission


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
        exceptions,
        finding,
        findings,
        organisation,
        portfolio,
        proposals,
        scans,
        scoring,
    )

    return (
        portfolio.PAGE,
        organisation.PAGE,
        findings.PAGE,
        finding.PAGE,
        assets.PAGE,
        proposals.PAGE,
        scoring.PAGE,
        exceptions.PAGE,
        scans.PAGE,
        alerts.PAGE,
        alerts.PORTFOLIO_PAGE,
    )


def page_modules() -> tuple[Any, ...]:
    """The pages with callbacks."""
    from dashboard.pages import exceptions, finding, findings, proposals

    return (findings, finding, exceptions, proposals)


def render(context: PageContext, path: str) -> Any:
    for page in all_pages():
        params = page.match(path)
        if params is None:
            continue
        if page.permission is Permission.DETAILS and not context.viewer.sees_details:
            return refused(context)
        return page.layout(context, **params)
    return not_found(context)
