"""The web collector against the real lab's nginx: expectations come from the manifest."""

from __future__ import annotations

import pytest

from collectors.web import WebCollector
from riskiturva.collector import ErrorKind, ScanTask, SubjectObservation, SubjectStatus, Target
from riskiturva.config import AssetKind, load_config
from riskiturva.runner import build_context
from tests.intel_data import fresh_snapshot
from tests.lab_scan import complete, errors, expected_complete, found, observe

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def observations(lab) -> list[SubjectObservation]:
    return observe(WebCollector(), load_config(lab.config_path))


def test_every_planted_weakness_is_found_and_clean_hosts_raise_nothing(lab, observations, tmp_path):
    # The software the sites name is judged with the lab's vulnerability feeds too.
    intel = fresh_snapshot(tmp_path)
    verdict = lab.manifest.verify("web", found(WebCollector(), observations, intel))
    assert verdict.missing == frozenset()
    assert verdict.unexpected == frozenset()


def test_every_manifest_subject_was_fetched_completely_or_failed_as_planted(lab, observations):
    assert complete("web", lab.manifest, observations) == expected_complete("web", lab.manifest)
    assert lab.manifest.verify_errors("web", errors(observations)).ok


def test_a_server_that_accepts_and_never_answers_is_a_timeout(observations):
    (silent,) = [o for o in observations if o.subject == "hiljainen.sekala.test"]
    assert (silent.status, silent.error.kind, silent.facts) == (
        SubjectStatus.ERROR, ErrorKind.TIMEOUT, None
    )  # fmt: skip


def test_certificate_failure_does_not_stop_header_checks(observations):
    by_subject = {o.subject: o.facts for o in observations}
    assert by_subject["www.hyvala.test"].certificate_verified is True
    for bad in ("asiointi.rapala.test", "intra.rapala.test", "lomakkeet.rapala.test"):
        facts = by_subject[bad]
        assert facts.certificate_verified is False
        assert facts.https.final.header("content-security-policy")


def test_requests_name_riskiturva_in_the_user_agent(lab, observations):
    log = (lab.directory / "web" / "access.log").read_text(encoding="utf-8", errors="replace")
    assert "Riskiturva/" in log


def test_unreachable_host_is_an_error_not_a_finding(lab):
    context = build_context(load_config(lab.config_path))
    # mx1 serves SMTP only: ports 80 and 443 are refused.
    task = ScanTask(
        1, "hyvala", "web",
        (Target("www.hyvala.test", AssetKind.HOST, "closed.hyvala.test", "127.60.1.25"),),
    )  # fmt: skip
    (observation,) = WebCollector().collect(task, context)
    assert observation.status is SubjectStatus.ERROR
    assert observation.error.kind is ErrorKind.REFUSED
