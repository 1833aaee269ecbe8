"""schemathesis against the served OpenAPI document: generated requests to every
operation, with the tokens of organisation staff, a management viewer and a partner
administrator, must bring no server error and no response outside the document (status,
content type, headers, schema), and requests that break the document must be refused.

The CI set runs one bounded case (the staff token, which reaches every operation's
success path, a few examples an operation); the whole run — three tokens, valid and
invalid data, more examples — is marked slow.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from dashboard.api import OPENAPI_PATH
from tests.two_tenants import bearer, make_tokens

# A decision's last day must come after today: a date the document cannot bound, so a
# schema-valid request may name a past day and be refused with 400, which it documents.
CONFIG = schemathesis.config.SchemathesisConfig.from_str(
    """
[[operations]]
include-operation-id = ["accept_risk", "mark_false_positive"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "429"]
"""
)


@pytest.fixture
def served(make_estate):
    """The app on both municipalities (no rate limit in the way) and its tokens."""
    app, sessions, finding_ids = make_estate(api_requests_per_minute=100000)
    return app, make_tokens(sessions, "staff", "viewer", "partner"), finding_ids


def run_schemathesis(
    served, tokens: dict[str, str], modes: tuple[GenerationMode, ...], examples: int
) -> Counter[tuple[str, str, int]]:
    """Every operation × token × mode, `examples` cases each; returns how many answered
    which status, by (operation, token)."""
    app, finding_ids = served[0], served[2]
    real = {"slug": ["hyvala", "rapala"], "finding_id": sorted(finding_ids.values())}
    schema = schemathesis.openapi.from_wsgi(OPENAPI_PATH, app.server, config=CONFIG)
    statuses: Counter[tuple[str, str, int]] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 15
    for operation in operations:
        for holder, secret in tokens.items():
            for mode in modes:
                checker(operation, holder, secret, mode, examples, real, statuses)()
    return statuses


def checker(operation, holder: str, secret: str, mode, examples: int, real, statuses: Counter):
    """A hypothesis test of `examples` cases of one operation, with one token."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def check(case) -> None:
        # The WSGI transport does not undo Brotli/gzip: ask for the body as it is (the
        # compression itself is tested in test_dashboard_weight.py).
        headers = {**bearer(secret), "Accept-Encoding": "identity"}
        response = case.call_and_validate(headers=headers)
        statuses[operation.label, holder, response.status_code] += 1
        if mode is GenerationMode.POSITIVE and case.path_parameters:
            # Generated slugs and ids hardly ever exist: the same case once more on real ones
            # (still schema-valid), so the success paths are checked too.
            for name in case.path_parameters.keys() & real.keys():
                case.path_parameters[name] = real[name][len(statuses) % len(real[name])]
            response = case.call_and_validate(headers=headers)
            statuses[operation.label, holder, response.status_code] += 1

    return check


def summary(statuses: Counter[tuple[str, str, int]]) -> dict[int, int]:
    by_status: Counter[int] = Counter()
    for (_, _, status), count in statuses.items():
        by_status[status] += count
    return dict(sorted(by_status.items()))


def test_staff_requests_to_every_operation_stay_within_the_document(served):
    tokens = served[1]
    statuses = run_schemathesis(served, {"staff": tokens["staff"]}, (GenerationMode.POSITIVE,), 4)
    reached = {label for (label, _, status) in statuses if status == 200}
    assert len(reached) >= 8, reached  # the success path is checked, not only refusals
    print(f"schemathesis (fast): {sum(statuses.values())} cases, {summary(statuses)}")


@pytest.mark.slow
def test_every_token_valid_and_invalid_data_stay_within_the_document(served):
    tokens = served[1]
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    statuses = run_schemathesis(served, tokens, modes, 30)
    for holder in tokens:
        assert any(h == holder and s == 200 for (_, h, s) in statuses), holder
    print(f"schemathesis (full): {sum(statuses.values())} cases, {summary(statuses)}")
