"""The read model: the one place every face (CLI, dashboard, reports) reads from.

Every query takes the caller's *visible organisations* (slugs) and returns frozen
dataclasses; an organisation outside them reads as absent (`NotVisible`). Scores are live
at the moment given (`now`); snapshots are for trends only and say their day. Severity,
category and titles come from the check registry. Faces format; they never query or score.

- `organisations`: the one visible-organisation lookup (`organisation`, `organisations`);
- `live`: scores at a moment, in bulk (and the kept summaries the portfolio uses);
- `portfolio`: one live row per organisation;
- `overview`: one organisation's overview (`overview`) and its score explained
  (`explanation`);
- `changes`: what changed in a period — the one event-based definition;
- `exceptions`: the register of accepted risks and false positives in force;
- `findings`: the findings list (whole, or by pages) and one finding with its history;
- `scans`: scan runs, the asset inventory and scan health;
- `asset`: one asset with its latest scans, its live score and its findings;
- `inventory`: the inventory with origins and states, the review queue of proposals with
  their evidence, sightings outside the scope, the estate's changes and the assets' tags;
- `trend`: snapshots read back, and the change over 30 days;
- `period`: the monthly reports' period summaries;
- `software`: known-exploited vulnerabilities, end of support and the manager's line;
- `management`: what a manager reads first — the top actions with owners and the grade
  after each, obligations per requirement profile, anonymised peer figures;
- `asof`: findings as they stood at a past moment, replayed from their events;
- `alerts`: recent alerts and their deliveries, the outbox, and who is alerted (`alert_setup`);
- `audit`: the audit trail, the accounts a partner administrator looks after and who of
  them is signed in now.
"""

from riskiturva.store import NotVisible
from riskiturva.views.alerts import (
    AlertEntry,
    AlertSetup,
    Delivery,
    MessageEntry,
    Recipient,
    RuleSetting,
    alert_setup,
    alerts,
    outbox,
)
from riskiturva.views.asset import AssetDetail, asset_detail
from riskiturva.views.audit import (
    ACTION_GROUPS,
    Account,
    AuditEntry,
    SignedIn,
    audit_entries,
    managed_accounts,
    signed_in_now,
)
from riskiturva.views.changes import Change, ChangeKind, Changes, changes
from riskiturva.views.clock import TIMEZONE, local_day
from riskiturva.views.exceptions import (
    EXPIRY_WARNING_DAYS,
    ExceptionEntry,
    ExceptionsRegister,
    exceptions,
)
from riskiturva.views.findings import (
    FindingRow,
    FindingsPage,
    FindingView,
    Timing,
    finding,
    findings,
    findings_page,
)
from riskiturva.views.inventory import (
    EstateChange,
    EvidenceView,
    InventoryAsset,
    ProposalKind,
    ReviewQueue,
    ServiceHint,
    SightingView,
    asset_tags,
    estate_changes,
    inventory,
    review_queue,
)
from riskiturva.views.live import LiveScore
from riskiturva.views.management import (
    Management,
    NoPeers,
    PlannedAction,
    ProfileResult,
    organisation_management,
)
from riskiturva.views.organisations import OrganisationRef, organisation, organisations
from riskiturva.views.overview import Overview, ScoreExplanation, explanation, overview
from riskiturva.views.period import (
    OrganisationReport,
    PortfolioReport,
    organisation_report,
    portfolio_report,
)
from riskiturva.views.portfolio import Portfolio, PortfolioRow, portfolio
from riskiturva.views.scans import AssetView, RunView, SubjectStateView, assets, runs
from riskiturva.views.software import (
    PatchStatus,
    SoftwareFinding,
    SoftwareView,
    VulnerabilityData,
    software,
)
from riskiturva.views.trend import ScoreChange, SnapshotPoint, score_history

__all__ = [
    "ACTION_GROUPS",
    "EXPIRY_WARNING_DAYS",
    "TIMEZONE",
    "Account",
    "AlertEntry",
    "AlertSetup",
    "AssetDetail",
    "AssetView",
    "AuditEntry",
    "Change",
    "ChangeKind",
    "Changes",
    "Delivery",
    "EstateChange",
    "EvidenceView",
    "ExceptionEntry",
    "ExceptionsRegister",
    "FindingRow",
    "FindingView",
    "FindingsPage",
    "InventoryAsset",
    "LiveScore",
    "Management",
    "MessageEntry",
    "NoPeers",
    "NotVisible",
    "OrganisationRef",
    "OrganisationReport",
    "Overview",
    "PatchStatus",
    "PlannedAction",
    "Portfolio",
    "PortfolioReport",
    "PortfolioRow",
    "ProfileResult",
    "ProposalKind",
    "Recipient",
    "ReviewQueue",
    "RuleSetting",
    "RunView",
    "ScoreChange",
    "ScoreExplanation",
    "ServiceHint",
    "SightingView",
    "SignedIn",
    "SnapshotPoint",
    "SoftwareFinding",
    "SoftwareView",
    "SubjectStateView",
    "Timing",
    "VulnerabilityData",
    "alert_setup",
    "alerts",
    "asset_detail",
    "asset_tags",
    "assets",
    "audit_entries",
    "changes",
    "estate_changes",
    "exceptions",
    "explanation",
    "finding",
    "findings",
    "findings_page",
    "inventory",
    "local_day",
    "managed_accounts",
    "organisation",
    "organisation_management",
    "organisation_report",
    "organisations",
    "outbox",
    "overview",
    "portfolio",
    "portfolio_report",
    "review_queue",
    "runs",
    "score_history",
    "signed_in_now",
    "software",
]
