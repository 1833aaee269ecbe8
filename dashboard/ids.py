"""Component ids: one constant each, shared by layouts, callbacks and browser tests."""

URL = "url"
REDIRECT = "redirect"
PAGE = "page"
SIGN_OUT = "sign-out"
NOT_FOUND = "not-found"

PORTFOLIO_TABLE = "portfolio-table"
PORTFOLIO_HEATMAP = "portfolio-heatmap"
PORTFOLIO_GRADES = "portfolio-grades"
PORTFOLIO_AS_OF = "portfolio-as-of"

ANSWER = "answer"
GRADE = "grade"
SCORE_LINE = "score-line"
AS_OF = "as-of"
CATEGORY_SCORES = "category-scores"
TREND = "trend"
PRIORITIES = "priorities"
CHANGES = "changes"
SCAN_HEALTH = "scan-health"
ACCEPTED_WARNING = "accepted-warning"
EXPIRING_WARNING = "expiring-warning"


def category_card(category: str) -> str:
    return f"category-{category}"


def changes_list(kind: str) -> str:
    """The list of one kind of change (new, resolved, reopened, accepted, expired, revoked)."""
    return f"changes-{kind}"


FINDINGS_ORG = "findings-org"
FILTER_CATEGORY = "filter-category"
FILTER_SEVERITY = "filter-severity"
FILTER_STATUS = "filter-status"
FILTER_ASSET = "filter-asset"
FINDINGS_TABLE = "findings-table"
FINDINGS_COUNT = "findings-count"
EXPORT = "export-csv"
DOWNLOAD = "download"

FINDING_ID = "finding-id"
EVIDENCE = "evidence"
REPRODUCE = "reproduce"
GUIDANCE = "guidance"
HISTORY = "history"
DECIDE_KIND = "decide-kind"
DECIDE_REASON = "decide-reason"
DECIDE_UNTIL = "decide-until"
DECIDE_SUBMIT = "decide-submit"
DECIDE_REVOKE = "decide-revoke"
DECIDE_MESSAGE = "decide-message"
FINDING_STATE = "finding-state"
FINDING_STATUS = "finding-status"

EXCEPTIONS = "exceptions"
EXCEPTIONS_ORG = "exceptions-org"
EXCEPTIONS_TABLE = "exceptions-table"
REVOKE_REASON = "revoke-reason"
REVOKE_SUBMIT = "revoke-submit"
REVOKE_MESSAGE = "revoke-message"

ASSETS_TABLE = "assets-table"
EXPLANATION = "explanation"
PLAN = "plan"
RUNS = "runs"

AUDIT_KIND = "audit-kind"
AUDIT_ORG = "audit-organisation"
AUDIT_TABLE = "audit-table"
SESSIONS_TABLE = "sessions-table"
END_SESSIONS_USER = "end-sessions-user"
END_SESSIONS = "end-sessions"
END_SESSIONS_MESSAGE = "end-sessions-message"
