"""The lab serves what its manifest says: real DNS, TLS, web, mail and services on loopback.

Every test talks to the running lab through explicit addresses (never a lab name through
the system resolver): dnspython against the lab name server, `openssl s_client` with an IP
and SNI, `nmap -sV` with explicit ports.
"""

from __future__ import annotations

import ipaddress
import os
import smtplib
import socket
import ssl
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import dns.dnssec
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.resolver
import dns.rrset
import dns.xfr
import dns.zone
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from riskiturva.config import load_config
from riskiturva.lab.cli import lab as lab_cli
from riskiturva.lab.estate import LabError, down, process_alive, read_state, running, up
from riskiturva.lab.pytest_plugin import RunningLab

pytestmark = pytest.mark.lab


# --- helpers ---------------------------------------------------------------------------


def _txt(lab: RunningLab, name: str) -> list[str]:
    answer = lab.resolver().resolve(name, "TXT", raise_on_no_answer=False)
    return [b"".join(r.strings).decode() for r in answer.rrset or ()]


def _fetch(lab: RunningLab, name: str, rdtype: str) -> tuple[dns.rrset.RRset, dns.rrset.RRset]:
    """An RRset and its RRSIG, straight from the lab name server."""
    query = dns.message.make_query(name, rdtype, want_dnssec=True)
    response, _ = dns.query.udp_with_fallback(query, lab.dns_server, 2.0, port=lab.dns_port)
    qname, qtype = dns.name.from_text(name), dns.rdatatype.from_text(rdtype)
    rrset = response.find_rrset(response.answer, qname, 1, qtype)
    sigs = response.find_rrset(response.answer, qname, 1, dns.rdatatype.RRSIG, qtype)
    return rrset, sigs


def _validate_chain(lab: RunningLab, zone: str) -> None:
    """Validate `zone`'s SOA from the lab trust anchor; raise if any link fails."""
    anchors = dns.zone.from_text(
        lab.trust_anchors_file.read_text(), origin="test.", relativize=False, check_origin=False
    ).get_rrset("test.", "DNSKEY")
    keys, sigs = _fetch(lab, "test.", "DNSKEY")
    assert set(anchors) <= set(keys), "the trust anchor is not among test.'s keys"
    dns.dnssec.validate(keys, sigs, {dns.name.from_text("test."): anchors})
    try:
        ds, ds_sigs = _fetch(lab, zone, "DS")
    except KeyError as exc:
        raise dns.dnssec.ValidationFailure(f"{zone} has no DS: it is unsigned") from exc
    dns.dnssec.validate(ds, ds_sigs, {dns.name.from_text("test."): keys})
    zone_keys, zone_key_sigs = _fetch(lab, zone, "DNSKEY")
    if not any(dns.dnssec.make_ds(f"{zone}.", key, "SHA256") in ds for key in zone_keys):
        raise dns.dnssec.ValidationFailure(f"no DNSKEY of {zone} matches its DS")
    dns.dnssec.validate(zone_keys, zone_key_sigs, {dns.name.from_text(zone): zone_keys})
    soa, soa_sigs = _fetch(lab, zone, "SOA")
    dns.dnssec.validate(soa, soa_sigs, {dns.name.from_text(zone): zone_keys})


def _s_client(lab: RunningLab, fqdn: str, *args: str, port: int = 443) -> str:
    ip = lab.host(fqdn).ip
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"{ip}:{port}", "-servername", fqdn,
         "-CAfile", str(lab.ca_file), *args],
        input="", capture_output=True, text=True, timeout=15, check=False,
    )  # fmt: skip
    return result.stdout + result.stderr


def _negotiated(output: str) -> bool:
    return "Cipher is (NONE)" not in output and "Cipher is" in output


def _served_chain(lab: RunningLab, fqdn: str) -> list[x509.Certificate]:
    pem = _s_client(lab, fqdn, "-showcerts")
    return x509.load_pem_x509_certificates(pem.encode()) if "BEGIN CERT" in pem else []


def _http(
    lab: RunningLab, fqdn: str, path: str = "/", *, tls: bool = True
) -> tuple[int, dict[str, str], str]:
    """GET `path` from the host's address with Host (and SNI) set to its name."""
    ip, port = lab.host(fqdn).ip, 443 if tls else 80
    sock: socket.socket = socket.create_connection((ip, port), timeout=5)
    if tls:
        ctx = ssl.create_default_context(cafile=str(lab.ca_file))
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # certificate faults are the TLS tests' business
        sock = ctx.wrap_socket(sock, server_hostname=fqdn)
    with sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {fqdn}\r\nConnection: close\r\n\r\n".encode())
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.decode(errors="replace").partition("\r\n\r\n")
    status_line, *header_lines = head.split("\r\n")
    headers: dict[str, str] = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        headers.setdefault(key.strip().lower(), value.strip())
    return int(status_line.split()[1]), headers, body


def _nmap(ip: str, ports: list[int], versions: bool = True) -> dict[int, tuple[str, str, str]]:
    """`nmap [-sV]` on explicit ports: port → (state, service name, product and version)."""
    probe = ["-sV"] if versions else []
    out = subprocess.run(
        ["nmap", *probe, "-Pn", "-n", "-p", ",".join(map(str, ports)), "-oX", "-", ip],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    found = {}
    for port in ET.fromstring(out).iter("port"):  # noqa: S314
        state = port.find("state")
        service = port.find("service")
        product = " ".join(
            filter(None, (service.get("product"), service.get("version")))
        ) if service is not None else ""  # fmt: skip
        found[int(port.get("portid", 0))] = (
            state.get("state", "") if state is not None else "",
            service.get("name", "") if service is not None else "",
            product,
        )
    return found


def _socket_addresses(pids: list[int]) -> set[tuple[str, str]]:
    """(protocol, local address) of every socket the given processes hold."""
    inodes = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        for fd in fd_dir.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for proto in ("tcp", "udp", "tcp6", "udp6"):
        for line in Path(f"/proc/net/{proto}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                hex_ip = fields[1].split(":")[0]
                if proto.endswith("6"):
                    found.add((proto, hex_ip))
                else:
                    found.add((proto, str(ipaddress.IPv4Address(bytes.fromhex(hex_ip)[::-1]))))
    return found


def _processes_working_in(directory: Path) -> list[int]:
    """Live processes whose working directory is `directory` (all lab servers start there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            if Path(cwd) == directory.resolve() and process_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


# --- DNS -------------------------------------------------------------------------------


def test_lab_name_server_serves_the_planted_records(lab: RunningLab) -> None:
    assert _txt(lab, "rapala.test") == ["v=spf1 a mx +all"]
    assert _txt(lab, "_dmarc.sekala.test") == ["v=DMARC1; p=none; rua=mailto:dmarc@sekala.test"]
    assert "p=rejected" in _txt(lab, "_dmarc.kirjasto.sekala.test")[0]
    assert len([t for t in _txt(lab, "uutiset.sekala.test") if t.startswith("v=spf1")]) == 2
    assert _txt(lab, "koulu.rapala.test") == []
    assert "-all" in _txt(lab, "hyvala.test")[0] or "-all" in _txt(lab, "hyvala.test")[1]
    assert _txt(lab, "_mta-sts.hyvala.test")[0].startswith("v=STSv1")
    assert _txt(lab, "_smtp._tls.hyvala.test")[0].startswith("v=TLSRPTv1")
    assert any("<script>" in t for t in _txt(lab, "sekala.test"))
    resolver = lab.resolver()
    assert [r.to_text() for r in resolver.resolve("hyvala.test", "CAA")]
    assert not resolver.resolve("rapala.test", "CAA", raise_on_no_answer=False).rrset
    assert len(resolver.resolve("rapala.test", "NS")) == 1
    assert str(resolver.resolve("rapala.test", "MX")[0].exchange) == "mx.rapala.test."
    assert resolver.resolve("www.hyvala.test", "A")[0].address == "127.60.1.10"
    assert resolver.resolve("ipv6.kuntaverkko.test", "AAAA")[0].address == "::1"


def test_dkim_keys_have_the_planted_sizes(lab: RunningLab) -> None:
    def key_bits(name: str) -> int:
        record = _txt(lab, name)[0]
        b64 = record.split("p=", 1)[1]
        key = serialization.load_der_public_key(__import__("base64").b64decode(b64))
        assert isinstance(key, rsa.RSAPublicKey)
        return key.key_size

    assert key_bits("s2048._domainkey.hyvala.test") == 2048
    assert key_bits("default._domainkey.rapala.test") == 1024


def test_spf_include_chain_needs_more_than_ten_lookups(lab: RunningLab) -> None:
    def lookups(domain: str) -> int:
        record = next(t for t in _txt(lab, domain) if t.startswith("v=spf1"))
        count = 0
        for term in record.split()[1:]:
            mechanism = term.lstrip("+-~?").split(":")[0]
            if mechanism in ("a", "mx", "include", "exists", "ptr"):
                count += 1
            if mechanism == "include":
                count += lookups(term.split(":", 1)[1])
        return count

    assert lookups("palvelut.sekala.test") > 10
    loop = next(t for t in _txt(lab, "_spf-kirjasto.sekala.test") if t.startswith("v=spf1"))
    assert "include:kirjasto.sekala.test" in loop


def test_dangling_cname_points_at_a_name_that_does_not_exist(lab: RunningLab) -> None:
    resolver = lab.resolver()
    target = resolver.resolve("vanha.rapala.test", "CNAME")[0].target
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve(target, "A")


def test_zone_transfer_is_open_on_one_zone_and_refused_on_the_others(lab: RunningLab) -> None:
    zone = dns.zone.from_xfr(dns.query.xfr(lab.dns_server, "rapala.test", port=lab.dns_port))
    assert "vanha" in {str(n) for n in zone.nodes}
    for refused in ("hyvala.test", "sekala.test"):
        with pytest.raises(dns.xfr.TransferError):
            dns.zone.from_xfr(dns.query.xfr(lab.dns_server, refused, port=lab.dns_port))


def test_dnssec_validates_for_signed_zones_and_fails_for_bogus_and_unsigned(
    lab: RunningLab,
) -> None:
    _validate_chain(lab, "hyvala.test")
    _validate_chain(lab, "kuntaverkko.test")
    with pytest.raises(dns.dnssec.ValidationFailure, match="matches its DS"):
        _validate_chain(lab, "sekala.test")
    with pytest.raises(dns.dnssec.ValidationFailure, match="unsigned"):
        _validate_chain(lab, "rapala.test")


# --- TLS -------------------------------------------------------------------------------


def test_modern_host_refuses_old_protocols_and_staples_ocsp(lab: RunningLab) -> None:
    assert not _negotiated(_s_client(lab, "www.hyvala.test", "-tls1", "-cipher", "ALL:@SECLEVEL=0"))
    assert not _negotiated(
        _s_client(lab, "www.hyvala.test", "-tls1_1", "-cipher", "ALL:@SECLEVEL=0")
    )
    out = _s_client(
        lab, "www.hyvala.test", "-tls1_3", "-status", "-verify_hostname", "www.hyvala.test"
    )
    assert _negotiated(out) and "Verify return code: 0 (ok)" in out
    assert "OCSP Response Status: successful" in out
    assert not _negotiated(
        _s_client(lab, "www.hyvala.test", "-tls1_2", "-cipher", "aNULL:@SECLEVEL=0")
    )


def test_legacy_host_accepts_tls1_0_anonymous_suites_and_weak_dh(lab: RunningLab) -> None:
    weak = ("-cipher", "ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    assert _negotiated(_s_client(lab, "www.rapala.test", "-tls1", *weak))
    assert _negotiated(_s_client(lab, "www.rapala.test", "-tls1_1", *weak))
    assert not _negotiated(_s_client(lab, "www.rapala.test", "-tls1_3"))
    assert _negotiated(_s_client(lab, "www.rapala.test", "-tls1_2", "-cipher", "aNULL:@SECLEVEL=0"))
    assert _negotiated(_s_client(lab, "www.rapala.test", "-tls1_2", "-cipher", "eNULL:@SECLEVEL=0"))
    out = _s_client(lab, "www.rapala.test", "-tls1_2", "-cipher", "DHE:@SECLEVEL=0", "-status")
    assert "Server Temp Key: DH, 1024 bits" in out
    assert "OCSP response: no response sent" in out


def test_tls12_only_host_refuses_tls1_3(lab: RunningLab) -> None:
    assert not _negotiated(_s_client(lab, "www.sekala.test", "-tls1_3"))
    assert _negotiated(_s_client(lab, "www.sekala.test", "-tls1_2"))


@pytest.mark.parametrize(
    ("fqdn", "verify_error"),
    [
        ("asiointi.rapala.test", "certificate has expired"),
        ("intra.rapala.test", "self-signed certificate"),
        ("lomakkeet.rapala.test", "hostname mismatch"),
        ("varaamo.sekala.test", "unable to verify the first certificate"),
        ("arkisto.sekala.test", "CA signature digest algorithm too weak"),
    ],
)
def test_certificate_faults_fail_verification(
    lab: RunningLab, fqdn: str, verify_error: str
) -> None:
    out = _s_client(lab, fqdn, "-verify_hostname", fqdn)
    assert _negotiated(out)
    assert verify_error in out


def test_certificate_details_match_the_manifest(lab: RunningLab) -> None:
    expiring = _served_chain(lab, "ajanvaraus.rapala.test")[0]
    days_left = (expiring.not_valid_after_utc - __import__("datetime").datetime.now(
        __import__("datetime").UTC)).days  # fmt: skip
    assert 0 <= days_left < 14
    assert "Verify return code: 0 (ok)" in _s_client(lab, "ajanvaraus.rapala.test")
    assert len(_served_chain(lab, "varaamo.sekala.test")) == 1
    assert len(_served_chain(lab, "www.hyvala.test")) == 2
    weak = _served_chain(lab, "arkisto.sekala.test")[0]
    assert weak.public_key().key_size == 1024  # type: ignore[union-attr]
    assert isinstance(weak.signature_hash_algorithm, hashes.SHA1)


# --- web -------------------------------------------------------------------------------


def test_web_hosts_answer_with_the_planted_headers(lab: RunningLab) -> None:
    status, headers, _ = _http(lab, "www.hyvala.test", tls=False)
    assert status == 301 and headers["location"] == "https://www.hyvala.test/"
    status, headers, _ = _http(lab, "www.hyvala.test")
    assert status == 200 and "max-age=63072000" in headers["strict-transport-security"]
    for name in ("content-security-policy", "x-content-type-options", "x-frame-options",
                 "referrer-policy"):  # fmt: skip
        assert name in headers
    assert headers["server"] == "nginx"

    status, headers, _ = _http(lab, "www.rapala.test", tls=False)
    assert status == 200 and "location" not in headers
    _, headers, _ = _http(lab, "www.rapala.test")
    assert "strict-transport-security" not in headers and "x-frame-options" not in headers
    assert headers["server"].startswith("nginx/") and "secure" not in headers["set-cookie"].lower()

    _, headers, _ = _http(lab, "www.sekala.test")
    assert headers["strict-transport-security"] == "max-age=86400"
    assert "content-security-policy" not in headers


def test_security_txt_and_mta_sts_policies(lab: RunningLab) -> None:
    status, _, body = _http(lab, "www.hyvala.test", "/.well-known/security.txt")
    assert status == 200 and "Contact: mailto:" in body
    assert _http(lab, "www.rapala.test", "/.well-known/security.txt")[0] == 404
    _, _, body = _http(lab, "www.sekala.test", "/.well-known/security.txt")
    expires = next(line for line in body.splitlines() if line.startswith("Expires:"))
    assert expires.split()[1] < time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    _, _, policy = _http(lab, "mta-sts.hyvala.test", "/.well-known/mta-sts.txt")
    assert "mode: enforce" in policy and "mx: mx1.hyvala.test" in policy
    _, _, policy = _http(lab, "mta-sts.sekala.test", "/.well-known/mta-sts.txt")
    assert "mode: testing" in policy


# --- mail ------------------------------------------------------------------------------


def test_mx_hosts_with_and_without_starttls(lab: RunningLab) -> None:
    with smtplib.SMTP(lab.host("mx1.hyvala.test").ip, 25, timeout=5) as smtp:
        smtp.ehlo("scanner.test")
        assert smtp.has_extn("starttls")
    with smtplib.SMTP(lab.host("mx.rapala.test").ip, 25, timeout=5) as smtp:
        smtp.ehlo("scanner.test")
        assert not smtp.has_extn("starttls")


def test_dane_tlsa_record_matches_the_mail_server_certificate(lab: RunningLab) -> None:
    tlsa = lab.resolver().resolve("_25._tcp.mx1.hyvala.test", "TLSA")[0]
    out = _s_client(
        lab, "mx1.hyvala.test", "-starttls", "smtp", "-dane_tlsa_domain", "mx1.hyvala.test",
        "-dane_tlsa_rrdata", tlsa.to_text(), port=25,
    )  # fmt: skip
    assert "Verification: OK" in out and "DANE TLSA 3 1 1" in out
    assert not _negotiated(_s_client(lab, "mx1.sekala.test", "-starttls", "smtp", "-tls1_1",
                                     "-cipher", "ALL:@SECLEVEL=0", port=25))  # fmt: skip


# --- exposed services ------------------------------------------------------------------


def test_nmap_identifies_the_planted_services(lab: RunningLab) -> None:
    rapala = _nmap("127.60.2.20", [21, 22, 23, 445, 3306, 3389])
    assert {port: name for port, (_, name, _) in rapala.items()} == {
        21: "ftp", 22: "ssh", 23: "telnet", 445: "microsoft-ds", 3306: "mysql",
        3389: "ms-wbt-server",
    }  # fmt: skip
    assert rapala[22][2] == "OpenSSH 7.4"
    assert rapala[21][2].startswith("vsftpd")
    sekala = _nmap("127.60.3.20", [22, 6379, 9200])
    assert sekala[6379][1] == "redis" and "Elasticsearch" in sekala[9200][2]


def test_clean_services_host_has_only_https_open(lab: RunningLab) -> None:
    ports = [21, 22, 23, 25, 80, 443, 445, 3306, 3389, 6379, 8080, 9200]
    found = _nmap("127.60.1.20", ports, versions=False)
    assert [p for p, (state, _, _) in found.items() if state == "open"] == [443]


def test_redis_answers_without_authentication(lab: RunningLab) -> None:
    with socket.create_connection(("127.60.3.20", 6379), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        assert sock.recv(64) == b"+PONG\r\n"


# --- lifecycle -------------------------------------------------------------------------


def test_generated_config_validates_and_lists_the_manifest_assets(lab: RunningLab) -> None:
    config = load_config(lab.config_path)
    assert [o.slug for o in config.organisations] == [
        "hyvala",
        "rapala",
        "sekala",
        "koivula",
        "vaarala",
    ]
    assert config.settings.resolver.nameservers == ("127.53.0.1",)
    assert config.settings.tls.extra_ca_files == (lab.ca_file,)
    assert config.settings.dnssec.trust_anchors_file == lab.trust_anchors_file
    manifest_assets = {a["value"] for m in lab.manifest.municipalities for a in m.assets}
    assert {a.value for o in config.organisations for a in o.assets} == manifest_assets


def test_every_lab_socket_is_on_loopback(lab: RunningLab) -> None:
    state = lab.lab_state
    pids = [pid for p in state.processes for pid in (p.pid, *p.children)]
    addresses = _socket_addresses(pids)
    assert addresses, "the lab's processes hold no sockets?"
    assert all(proto in ("tcp", "udp") for proto, _ in addresses), "an IPv6 socket"
    assert all(ipaddress.IPv4Address(ip).is_loopback for _, ip in addresses)


def test_up_is_idempotent_and_fast_and_cli_prints_config_last(lab: RunningLab) -> None:
    before = lab.lab_state
    assert before.startup_seconds < 30
    runner = CliRunner()
    result = runner.invoke(lab_cli, ["up", "--dir", str(lab.directory)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(lab.config_path)
    assert [p.pid for p in lab.lab_state.processes] == [p.pid for p in before.processes]
    status = runner.invoke(lab_cli, ["status", "--dir", str(lab.directory)])
    assert status.exit_code == 0 and "STOPPED" not in status.output


def test_a_second_lab_on_the_same_addresses_is_refused_before_anything_starts(
    lab: RunningLab, tmp_path: Path
) -> None:
    """Readiness checks would take the running lab's answers for the new lab's own: the
    second lab must refuse to start, naming an address, and leave the first one intact."""
    with pytest.raises(LabError, match=r"already listens on the lab's 127\.5\d\.\d+\.\d+:"):
        up(tmp_path / "second", manifest=lab.manifest)
    assert read_state(tmp_path / "second") is None
    assert all(running(lab.lab_state).values())


def test_latency_proxy_then_down_leaves_no_process_behind(lab: RunningLab) -> None:
    """Restart with a 40 ms delay proxy, measure it, stop, and restart plain for the rest."""
    directory = lab.directory
    down(directory)
    try:
        state = up(directory, latency_ms=40)
        assert "latency-proxy" in running(state)
        query = dns.message.make_query("hyvala.test.", "SOA")
        started = time.monotonic()
        dns.query.udp(query, lab.dns_server, timeout=2, port=lab.dns_port)
        assert time.monotonic() - started >= 0.04
        started = time.monotonic()
        assert _negotiated(_s_client(lab, "www.hyvala.test", "-tls1_3"))
        assert time.monotonic() - started >= 0.08  # the TCP and TLS round trips

        recorded = [pid for p in state.processes for pid in (p.pid, *p.children)]
        stopped = down(directory)
        assert len(stopped) == len(recorded)
        assert read_state(directory) is None
        assert not [pid for pid in recorded if process_alive(pid)]
        assert not _processes_working_in(directory), "an unrecorded process survived"
        with pytest.raises(OSError):
            socket.create_connection((lab.host("www.hyvala.test").ip, 443), timeout=1)
    finally:
        up(directory, manifest=lab.manifest)
    assert all(running(lab.lab_state).values())
