"""The TLS collector against the real lab: nginx, aiosmtpd and Knot DNS on loopback.

Expectations come from the lab manifest, both ways: every planted TLS weakness is found on
its subject, and the clean endpoints raise nothing.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from collectors.tls import TLSCollector
from riskiturva.collector import ErrorKind, ScanTask, SubjectObservation, SubjectStatus, Target
from riskiturva.config import AssetKind, load_config
from riskiturva.runner import build_context
from tests.lab_scan import complete, errors, expected_complete, found, observe

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def observations(lab) -> list[SubjectObservation]:
    """One scan of the whole lab estate, as the runner would drive it."""
    return observe(TLSCollector(), load_config(lab.config_path))


def test_every_planted_weakness_is_found_and_clean_endpoints_raise_nothing(lab, observations):
    verdict = lab.manifest.verify("tls", found(TLSCollector(), observations))
    assert verdict.missing == frozenset()
    assert verdict.unexpected == frozenset()


def test_every_manifest_subject_was_scanned_completely_or_failed_as_planted(lab, observations):
    """Otherwise "clean" could mean "not looked at"."""
    assert complete("tls", lab.manifest, observations) == expected_complete("tls", lab.manifest)
    assert lab.manifest.verify_errors("tls", errors(observations)).ok


def test_wildcards_cover_one_label_and_a_mismatch_is_not_an_untrusted_chain(observations):
    by_subject = {o.subject: o.facts for o in observations}
    covered = by_subject["kirjasto.hyvala.test:443"]
    assert covered.certificate.dns_names == ("*.hyvala.test",)
    assert (covered.certificate.chain_trusted, covered.certificate.hostname_matches) == (True, True)
    assert covered.grade.grade == "A+"
    deep = by_subject["varaus.liikunta.sekala.test:443"]
    assert deep.certificate.dns_names == ("*.sekala.test",)
    assert (deep.certificate.chain_trusted, deep.certificate.hostname_matches) == (True, False)
    assert deep.grade.grade == "M"


def test_a_server_that_accepts_and_never_answers_is_a_timeout_named_as_such(observations):
    (silent,) = [o for o in observations if o.subject == "hiljainen.sekala.test:443"]
    assert (silent.status, silent.error.kind) == (SubjectStatus.ERROR, ErrorKind.TIMEOUT)
    assert "no answer to a TLS ClientHello" in silent.error.message


def test_modern_endpoints_grade_a_plus_and_the_legacy_one_f(lab, observations):
    by_subject = {o.subject: o.facts for o in observations}
    assert by_subject["www.hyvala.test:443"].grade.grade == "A+"
    assert by_subject["www.rapala.test:443"].grade.grade == "F"
    assert by_subject["lomakkeet.rapala.test:443"].grade.grade == "M"


def test_findings_carry_certificate_evidence_and_a_reproduce_command(lab, observations):
    (observation,) = [o for o in observations if o.subject == "asiointi.rapala.test:443"]
    (expired,) = [d for d in TLSCollector().judge(observation) if d.check_id.endswith("expired")]
    host = lab.host("asiointi.rapala.test")
    assert expired.evidence["subject"] == "CN=asiointi.rapala.test,O=Riskiturva Lab"
    assert expired.evidence["not_after"] < observation.facts.scanned_at
    assert len(expired.evidence["sha256_fingerprint"]) == 95
    assert f"-connect {host.ip}:443 -servername asiointi.rapala.test" in expired.reproduce


def test_mail_exchangers_come_from_mx_records_and_are_scanned_with_starttls(observations):
    mail = {o.subject: o for o in observations if o.subject.endswith(":25")}
    # Every mail domain's MX host, none else (each municipality's configuration names only
    # its mail domain: the host comes from the MX record).
    mx_hosts = {f"mx1.{m}.test:25" for m in ("hyvala", "sekala", "koivula", "vaarala")}
    assert set(mail) == mx_hosts | {"mx.rapala.test:25"}
    assert mail["mx.rapala.test:25"].facts.starttls_offered is False
    assert mail["mx1.sekala.test:25"].facts.protocols_offered == ("TLSv1.2", "TLSv1.3")


# --- errors are data (own listeners on a loopback address the lab does not use) ----------


@pytest.fixture
def misbehaving_server() -> Iterator[tuple[str, str]]:
    """Port 443 on one address resets every connection; on another it accepts and stalls."""
    reset_ip, stall_ip = "127.61.9.1", "127.61.9.2"
    reset, stall = socket.create_server((reset_ip, 443)), socket.create_server((stall_ip, 443))
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        reset.settimeout(0.1)
        stall.settimeout(0.1)
        while not stop.is_set():
            for server in (reset, stall):
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                if server is reset:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    conn.close()
                else:
                    held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield reset_ip, stall_ip
    stop.set()
    thread.join()
    for sock in (reset, stall, *held):
        sock.close()


def test_refused_reset_and_stalled_endpoints_are_errors_never_findings(lab, misbehaving_server):
    reset_ip, stall_ip = misbehaving_server
    config = load_config(lab.config_path)
    settings = config.settings.model_copy(
        update={
            "timeouts": config.settings.timeouts.model_copy(update={"connect": 1.0}),
            "collectors": {"tls": {"max_retries": 0}},
        }
    )
    context = build_context(config.model_copy(update={"settings": settings}))
    task = ScanTask(
        1,
        "hyvala",
        "tls",
        (
            # mx1 listens on 25 only: 443 is refused.
            Target("www.hyvala.test", AssetKind.HOST, "refused.hyvala.test", "127.60.1.25"),
            Target("www.hyvala.test", AssetKind.HOST, "reset.hyvala.test", reset_ip),
            Target("www.hyvala.test", AssetKind.HOST, "stall.hyvala.test", stall_ip),
        ),
    )
    observations = {o.subject: o for o in TLSCollector().collect(task, context)}
    kinds = {s: o.error.kind for s, o in observations.items() if o.error}
    assert all(o.status is SubjectStatus.ERROR and o.facts is None for o in observations.values())
    # Each by its cause: never a verdict, never "no TLS version supported"
    assert kinds == {
        "refused.hyvala.test:443": ErrorKind.REFUSED,
        "reset.hyvala.test:443": ErrorKind.RESET,
        "stall.hyvala.test:443": ErrorKind.TIMEOUT,
    }
