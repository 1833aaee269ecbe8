"""Monthly management reports: data from the store, HTML and PDF, archive and e-mail.

- `data`: what a report says (`organisation_report`, `portfolio_report`), no words;
- `render`: HTML from Jinja2 templates (autoescaped) and PDF from it with WeasyPrint;
- `charts`: Matplotlib charts as SVG;
- `delivery`: the monthly job (`deliver_monthly`), the archive and its queries
  (`archived_reports`, `open_archived`), and e-mail over SMTP with STARTTLS.

The public names below load their module on first use, so importing the archive's
model (which `riskiturva.models` does) does not load Matplotlib or WeasyPrint.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Month": "period",
    "previous_month": "period",
    "organisation_report": "data",
    "portfolio_report": "data",
    "OrganisationReport": "data",
    "PortfolioReport": "data",
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

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
