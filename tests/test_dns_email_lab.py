"""The dns_email collector against the real lab: Knot DNS, nginx (MTA-STS) and SMTP (DANE).

Expectations come from the lab manifest, both ways: every planted DNS and e-mail weakness
is found on its subject, and the well-kept municipality raises nothing.
"""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from collectors.dns_email import DnsEmailCollector
from collectors.dns_email.mail import (
    MtaStsFacts,
    fetch_mta_sts_policy,
    smtp_certificate,
    tls_client_context,
)
from riskiturva import db
from riskiturva.collector import (
    ErrorKind,
    SubjectObservation,
    SubjectStatus,
    to_jsonable,
)
from riskiturva.config import Asset, AssetKind, Config
from riskiturva.models import Finding, ScanError, ScanRun
from riskiturva.runner import run_collector
from riskiturva.store import make_engine, session_factory
from tests.lab_scan import found, observe

pytestmark = pytest.mark.lab


def lab_config(path: Path, **settings: Any) -> Config:
    """The lab's generated configuration, with the DKIM selectors of its mail assets.

    Targets do not carry an asset's `dkim_selectors` yet, so the lab's selectors go in
    through the collector's own option `[settings.collectors.dns_email] dkim_selectors`.
    """
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    selectors = sorted(
        {
            s
            for o in raw["organisations"]
            for a in o.get("assets", ())
            for s in a.get("dkim_selectors", ())
        }
    )
    raw["settings"]["collectors"] = {"dns_email": {"dkim_selectors": selectors}}
    for key, value in settings.items():
        raw["settings"][key] = {**raw["settings"].get(key, {}), **value}
    return Config.model_validate(raw)


def scan(config: Config) -> list[SubjectObservation]:
    """One scan of every organisation, driven as the runner drives it."""
    return observe(DnsEmailCollector(), config)


@pytest.fixture(scope="module")
def observations(lab) -> list[SubjectObservation]:
    return scan(lab_config(lab.config_path))


def findings(observations: list[SubjectObservation]) -> set[tuple[str, str]]:
    return found(DnsEmailCollector(), observations)


def test_every_planted_weakness_is_found_and_the_clean_domain_raises_nothing(lab, observations):
    verdict = lab.manifest.verify("dns_email", findings(observations))
    assert verdict.missing == frozenset()
    assert verdict.unexpected == frozenset()


def test_every_subject_was_scanned_completely(lab, observations):
    """Otherwise "clean" could mean "not looked at"."""
    status = {o.subject: o.status for o in observations}
    subjects = {e.subject for e in lab.manifest.expectations if e.collector == "dns_email"}
    assert {s: status.get(s) for s in subjects} == dict.fromkeys(subjects, SubjectStatus.OK)


def test_a_domain_and_a_mail_domain_of_one_name_are_one_subject(observations):
    hyvala = [o for o in observations if o.subject == "hyvala.test"]
    assert len(hyvala) == 1
    assert hyvala[0].facts.roles == ("domain", "mail_domain")


def test_the_well_kept_domain_is_secure_by_our_own_validation(observations):
    facts = next(o.facts for o in observations if o.subject == "hyvala.test")
    assert facts.dnssec.status == "secure"
    assert facts.dnssec.chain[0] == "test. DNSKEY validated by the trust anchor"
    assert facts.mta_sts.policy.mode == "enforce" and facts.mta_sts.uncovered_mx == ()
    assert [(d.host, d.matched) for d in facts.dane] == [("mx1.hyvala.test", True)]
    assert {k.selector: k.bits for k in facts.dkim.keys} == {"s2048": 2048}


def test_the_bogus_zone_says_why(observations):
    facts = next(o.facts for o in observations if o.subject == "sekala.test")
    assert facts.dnssec.status == "bogus"
    assert "no DNSKEY matches the DS" in facts.dnssec.reason


def test_reproduce_commands_show_the_evidence(observations):
    """A person pasting the command sees the record the finding is about."""
    collector = DnsEmailCollector()
    rapala = next(o for o in observations if o.subject == "rapala.test")
    drafts = {d.check_id: d for d in collector.judge(rapala)}
    command = drafts["email.spf.pass_all"].reproduce
    assert command == "dig +short TXT rapala.test @127.53.0.1"
    output = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=10)
    assert '"v=spf1 a mx +all"' in output.stdout
    axfr = subprocess.run(
        shlex.split(drafts["dns.axfr.open"].reproduce), capture_output=True, text=True, timeout=10
    )
    assert "vanha.rapala.test." in axfr.stdout


def test_nameservers_outside_the_scope_are_not_asked_and_nothing_is_concluded(lab):
    config = lab_config(lab.config_path)
    rapala = next(o for o in config.organisations if o.slug == "rapala")
    narrowed = rapala.model_copy(
        update={"scope": rapala.scope.model_copy(update={"networks": (rapala.scope.networks[0],)})}
    )
    config = config.model_copy(update={"organisations": (narrowed,)})
    observation = next(o for o in scan(config) if o.subject == "rapala.test")
    assert observation.status is SubjectStatus.PARTIAL
    assert any("127.53.0.1: outside the scope" in n for n in observation.facts.not_checked)
    assert "dns.axfr.open" not in {d.check_id for d in DnsEmailCollector().judge(observation)}


def test_a_refusing_resolver_is_an_error_of_the_target_not_a_missing_record(lab):
    # Knot answers REFUSED for a zone it does not serve.
    config = Config.model_validate(
        {
            "settings": {"resolver": {"nameservers": [lab.dns_server], "port": lab.dns_port}},
            "organisations": [
                {
                    "slug": "muu",
                    "name": {"fi": "Muu", "sv": "Annan", "en": "Other"},
                    "scope": {"domains": ["muu.example"]},
                    "assets": [{"kind": str(AssetKind.MAIL_DOMAIN), "value": "muu.example"}],
                }
            ],
        }
    )
    [observation] = scan(config)
    assert observation.status is SubjectStatus.ERROR
    assert observation.error.kind is ErrorKind.REFUSED


def test_a_silent_resolver_leaves_findings_open_and_records_the_error(lab, tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'riskiturva.db'}")
    db.upgrade(engine)
    sessions = session_factory(engine)
    config = lab_config(lab.config_path)
    first = run_collector(sessions, config, DnsEmailCollector())
    assert first.counts.opened > 0 and first.errors_by_kind == {}
    # Nothing listens on this loopback address: every lookup times out.
    silent = lab_config(
        lab.config_path, resolver={"nameservers": ["127.53.9.9"], "timeout": 0.2, "retries": 0}
    )
    second = run_collector(sessions, silent, DnsEmailCollector())
    assert second.counts.resolved == 0
    assert set(second.errors_by_kind) <= {ErrorKind.TIMEOUT, ErrorKind.UNREACHABLE}
    with sessions() as session:
        assert session.query(Finding).filter(Finding.resolved_at.is_not(None)).count() == 0
        errors = session.query(ScanError).filter_by(run_id=second.run_id).all()
        assert errors and all(e.kind in ("timeout", "unreachable") for e in errors)
        # It checked nothing at all: the run failed (and `riskiturva scan` exits 1)
        assert session.get(ScanRun, second.run_id).status == "failed"


def test_the_per_target_budget_ends_a_scan_as_a_timeout_of_that_target(lab):
    config = lab_config(lab.config_path, timeouts={"host": 0.001})
    observations = scan(config)
    assert observations and {o.status for o in observations} == {SubjectStatus.ERROR}
    assert {o.error.kind for o in observations} == {ErrorKind.TIMEOUT}


def test_an_untrusted_policy_certificate_makes_the_policy_unavailable(lab):
    # Without the lab CA, mta-sts.hyvala.test's certificate cannot be verified.
    record = MtaStsFacts("hyvala.test", ("v=STSv1; id=20250101T000000",))
    address = lab.host("mta-sts.hyvala.test").ip
    untrusted = asyncio.run(
        fetch_mta_sts_policy(record, address, tls_client_context(()), "test", 5.0, ())
    )
    assert untrusted.policy is None and untrusted.problem.startswith("TLS failed")
    trusted = asyncio.run(
        fetch_mta_sts_policy(
            record, address, tls_client_context((lab.ca_file,)), "test", 5.0, ("mx9.hyvala.test",)
        )
    )
    assert trusted.policy.mode == "enforce" and trusted.uncovered_mx == ("mx9.hyvala.test",)


def test_an_mx_without_starttls_gives_no_certificate(lab):
    assert asyncio.run(smtp_certificate(lab.host("mx.rapala.test").ip, "mx.rapala.test", 5.0)) == (
        "STARTTLS is not offered"
    )


def test_a_configured_name_that_does_not_exist_is_an_error_not_a_pile_of_findings(lab):
    config = lab_config(lab.config_path)
    rapala = next(o for o in config.organisations if o.slug == "rapala")
    gone = Asset(kind=AssetKind.MAIL_DOMAIN, value="poistettu.rapala.test")
    config = config.model_copy(
        update={"organisations": (rapala.model_copy(update={"assets": (gone,)}),)}
    )
    [observation] = scan(config)
    assert observation.status is SubjectStatus.ERROR
    assert observation.error.kind is ErrorKind.DNS_FAILURE
    assert "NXDOMAIN" in observation.error.message


def test_a_second_scan_of_unchanged_records_gives_the_same_evidence(lab, observations):
    """Unchanged findings must not look changed (the store records evidence changes)."""
    collector = DnsEmailCollector()

    def drafts(seen: list[SubjectObservation]) -> dict[tuple[str, str], object]:
        return {
            (o.subject, d.check_id): (to_jsonable(d.evidence), d.reproduce)
            for o in seen
            for d in collector.judge(o)
        }

    assert drafts(scan(lab_config(lab.config_path))) == drafts(observations)
