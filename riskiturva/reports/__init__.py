"""Monthly management reports: data from the store, HTML and PDF, archive and e-mail.

- what a report says comes from the read model (`riskiturva.views.period`), no words;
- `render`: HTML from Jinja2 templates (autoescaped) and PDF from it with WeasyPrint;
- `charts`: Matplotlib charts as SVG;
- `delivery`: the monthly job (`deliver_monthly`), the archive and its queries
  (`archived_reports`, `open_archived`), and e-mail over SMTP with STARTTLS.

The public names below load their module on first use, so importing the archive's
model (which `riskiturva.schema` does) does not load Matplotlib or WeasyPrint.
"""

from __future__ import annotations

import importlib
from typing import Any

from riskiturva.period import Month, previous_month

_EXPORTS = {
    "ReportFormat": "render",
    "organisation_html": "render",
    "portfolio_html": "render",
    "render": "render",
    "ArchivedReport": "models",
    "archived_reports": "delivery",
    "open_archived": "delivery",
    "deliver_monthly": "delivery",
    "render_organisation": "render",
    "render_portfolio": "render",
    "RenderedReport": "render",
}

__all__ = [
    "ArchivedReport",
    "Month",
    "RenderedReport",
    "ReportFormat",
    "archived_reports",
    "deliver_monthly",
    "open_archived",
    "organisation_html",
    "portfolio_html",
    "previous_month",
    "render",
    "render_organisation",
    "render_portfolio",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
