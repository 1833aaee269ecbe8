"""Services collector, offline: rules on small facts, software identification, options, XML."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from collectors.services import ServicesCollector
from collectors.services._nmap import (
    HostState,
    NmapBroken,
    NmapLimits,
    build_command,
    parse_report,
)
from collectors.services.facts import Baseline, HostFacts, OpenPort, parse_port_ranges
from collectors.services.options import ServicesOptions
from collectors.services.rules import SERVICE_RULES, judge_host
from collectors.services.software import identify
from riskiturva.checks import load_registry
from riskiturva.collector import SubjectObservation, SubjectStatus, to_jsonable
from riskiturva.config import PolitenessSettings
from riskiturva.intel.software import Confidence
from riskiturva.politeness import Politeness
from tests.rule_checks import checked

ADDRESS = "127.60.2.20"


def port(number: int, service: str = "", **kw) -> OpenPort:
    """An open TCP port as -sV would report it (probed unless said otherwise)."""
    return OpenPort(number, kw.pop("protocol", "tcp"), service, probed=kw.pop("probed", True), **kw)


def findings(*ports: OpenPort, baseline: Baseline | None = None) -> set[tuple[str, str]]:
    facts = HostFacts(ADDRESS, tuple(ports), {"tcp": "1-65535"}, baseline=baseline)
    return {(d.subject, d.check_id) for d in checked(judge_host, facts)}


def at(number: int, *check_ids: str, protocol: str = "tcp") -> set[tuple[str, str]]:
    return {(f"{ADDRESS}:{number}/{protocol}", c) for c in check_ids}


# --- the registry and the rules agree -----------------------------------------------------


def test_every_check_id_is_registered_with_words_and_every_registered_id_has_a_rule():
    registry = load_registry()
    registered = {c for c in registry if c.startswith("services.")}
    assert ServicesCollector.check_ids == registered
    for check_id in registered:
        check = registry[check_id]
        assert all(check.title_in(lang) and check.guidance_in(lang) for lang in ("fi", "sv", "en"))
        assert check.references


def test_rdp_and_smb_are_critical_databases_high_and_no_auth_critical():
    registry = load_registry()
    severity = {c: str(registry[c].severity) for c in ServicesCollector.check_ids}
    assert severity["services.exposed.rdp"] == severity["services.exposed.smb"] == "critical"
    assert severity["services.exposed.redis"] == severity["services.exposed.mysql"] == "high"
    assert severity["services.database.no_auth"] == "critical"
    assert severity["services.change.new_port"] == "medium"


# --- exposure ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("open_port", "check_id"),
    [
        (
            port(3389, "ms-wbt-server", product="Microsoft Terminal Services"),
            "services.exposed.rdp",
        ),
        (port(445, "microsoft-ds"), "services.exposed.smb"),
        (port(139, "netbios-ssn"), "services.exposed.smb"),
        (port(5900, "vnc", product="VNC"), "services.exposed.vnc"),
        (port(3306, "mysql", product="MySQL"), "services.exposed.mysql"),
        (port(5432, "postgresql"), "services.exposed.postgresql"),
        (port(1433, "ms-sql-s"), "services.exposed.mssql"),
        (port(27017, "mongodb"), "services.exposed.mongodb"),
        (port(6379, "redis"), "services.exposed.redis"),
        (port(9200, "http", product="Elasticsearch REST API"), "services.exposed.elasticsearch"),
        (port(11211, "memcache"), "services.exposed.memcached"),
        (port(161, "snmp", protocol="udp"), "services.exposed.snmp"),
        (port(10000, "http", product="MiniServ", version="1.890"), "services.exposed.admin_panel"),
        (port(8006, "http", probed=False), "services.exposed.admin_panel"),
    ],
)
def test_risky_service_raises_its_exposure_check(open_port, check_id):
    assert (f"{ADDRESS}:{open_port.key}", check_id) in findings(open_port)


def test_service_identified_by_nmap_beats_the_port_number():
    # Given an ordinary web server on 3389 and RDP moved to 8443
    web_on_rdp_port = port(3389, "http", product="nginx", version="1.24.0")
    rdp_elsewhere = port(8443, "ms-wbt-server")
    # Then only the real RDP is reported
    assert findings(web_on_rdp_port, rdp_elsewhere) == at(8443, "services.exposed.rdp")


def test_unidentified_service_falls_back_to_the_port_number():
    for guess in (port(3389, "ms-wbt-server", probed=False), port(3389, "tcpwrapped")):
        assert findings(guess) == at(3389, "services.exposed.rdp")


def test_https_and_ssh_raise_nothing():
    assert findings(port(443, "http", tunnel="ssl", product="nginx", version="1.24.0")) == set()
    assert findings(port(22, "ssh", product="OpenSSH", version="9.2p1 Debian 2+deb12u3")) == set()


# --- clear text --------------------------------------------------------------------------


def test_telnet_and_plain_ftp_are_exposed_and_cleartext():
    assert findings(port(23, "telnet"), port(21, "ftp", product="vsftpd", version="3.0.3")) == (
        at(23, "services.exposed.telnet", "services.cleartext.telnet")
        | at(21, "services.exposed.ftp", "services.cleartext.ftp")
    )


def test_ftp_offering_auth_tls_or_implicit_tls_raises_nothing():
    auth_tls = port(
        21, "ftp", product="vsftpd", version="3.0.3", scripts={"ssl-cert": "Subject: ..."}
    )
    implicit = port(990, "ftp", tunnel="ssl")
    assert findings(auth_tls, implicit) == set()


def test_pop3_and_imap_without_tls_are_cleartext_but_with_starttls_are_not():
    plain = findings(port(110, "pop3"), port(143, "imap"))
    assert plain == at(110, "services.cleartext.pop3") | at(143, "services.cleartext.imap")
    upgraded = {"ssl-cert": "Subject: commonName=mail.rapala.test"}
    assert findings(port(110, "pop3", scripts=upgraded), port(993, "imap", tunnel="ssl")) == set()


# --- no authentication -------------------------------------------------------------------

REDIS_INFO = (
    "\n  Version: 7.0.15\n  Operating System: Linux\n  Used CPU (sys): 0.006259\n  Role: master"
)


def test_redis_that_answers_info_without_auth_is_critical():
    drafts = checked(
        judge_host,
        HostFacts(ADDRESS, (port(6379, "redis", scripts={"redis-info": REDIS_INFO}),), {}),
    )
    by_id = {d.check_id: d for d in drafts}
    assert set(by_id) == {"services.exposed.redis", "services.database.no_auth"}
    no_auth = by_id["services.database.no_auth"]
    assert no_auth.evidence["proof"] == "redis-info"
    # Only stable lines: CPU time and client counts would change the evidence every scan
    assert no_auth.evidence["output"] == "Version: 7.0.15\nRole: master"
    assert no_auth.reproduce == f"nmap -n -Pn -sT -sV -p 6379 --script redis-info {ADDRESS}"


def test_database_that_needs_a_password_is_only_exposed():
    # redis-info prints nothing when the server answers NOAUTH; mongodb says "unauthorized"
    guarded = (
        port(6379, "redis", product="Redis key-value store"),
        port(27017, "mongodb", scripts={"mongodb-databases": "ERROR: unauthorized"}),
    )
    assert findings(*guarded) == at(6379, "services.exposed.redis") | at(
        27017, "services.exposed.mongodb"
    )


def test_open_elasticsearch_and_memcached_and_mongodb_need_no_auth():
    open_ones = (
        port(9200, "http", product="Elasticsearch REST API", version="8.15.3"),
        port(11211, "memcache", scripts={"memcached-info": "\n  Uptime: 5\n  Authentication: no"}),
        port(27017, "mongodb", scripts={"mongodb-databases": "\n  totalSize = 83886080.0"}),
    )
    no_auth = {s for s, c in findings(*open_ones) if c == "services.database.no_auth"}
    assert no_auth == {f"{ADDRESS}:9200/tcp", f"{ADDRESS}:11211/tcp", f"{ADDRESS}:27017/tcp"}


def test_no_auth_is_only_judged_on_databases():
    # A web server whose page happens to contain "Version:" is not a database
    assert findings(port(80, "http", scripts={"redis-info": REDIS_INFO})) == set()


# --- software identification (judged by riskiturva/intel; see test_software_rules.py) -----


@pytest.mark.parametrize(
    ("open_port", "product", "version", "key"),
    [
        (
            port(22, "ssh", product="OpenSSH", version="7.4", cpe=("cpe:/a:openbsd:openssh:7.4",)),
            "OpenSSH",
            "7.4",
            "openbsd:openssh",
        ),
        (
            port(80, "http", product="Apache httpd", cpe=("cpe:/a:apache:http_server:2.2.34",)),
            "Apache httpd",
            "2.2.34",
            "apache:http_server",
        ),
        (port(80, "http", cpe=("cpe:/a:igor_sysoev:nginx:1.18.0",)), "nginx", "1.18.0", "f5:nginx"),
        (
            port(80, "http", cpe=("cpe:/a:microsoft:internet_information_services:7.5",)),
            "internet_information_services",
            "7.5",
            "microsoft:internet_information_services",
        ),
        (port(80, "http", extrainfo="PHP/7.4.33"), "PHP", "7.4.33", "php:php"),
        (
            port(3306, "mysql", cpe=("cpe:/a:mysql:mysql:5.7.44",)),
            "mysql",
            "5.7.44",
            "oracle:mysql",
        ),
    ],
)
def test_nmap_names_software_with_its_upstream_version(open_port, product, version, key):
    (software,) = identify(open_port)
    assert (software.product, software.version, software.key) == (product, version, key)
    assert software.confidence is Confidence.HIGH
    assert software.evidence.startswith(f"nmap -sV {open_port.key}:")


def test_distribution_banner_is_low_confidence_and_names_the_release():
    debian = port(
        22,
        "ssh",
        product="OpenSSH",
        version="9.2p1 Debian 2+deb12u3",
        extrainfo="protocol 2.0",
        cpe=("cpe:/a:openbsd:openssh:9.2p1", "cpe:/o:linux:linux_kernel"),
    )
    found = {s.key: s for s in identify(debian)}
    assert set(found) == {"openbsd:openssh", "debian:debian_linux"}
    ssh = found["openbsd:openssh"]
    assert (ssh.version, ssh.confidence, ssh.distribution, ssh.package) == (
        "9.2p1",
        Confidence.LOW,
        "Debian 12",
        "2+deb12u3",
    )
    system = found["debian:debian_linux"]
    assert (system.version, system.confidence) == ("12", Confidence.MEDIUM)
    assert system.cpe.startswith("cpe:2.3:o:debian:debian_linux:12:")


def test_tls_stack_and_php_in_extra_info_are_software_too():
    web = port(
        443,
        "http",
        product="Apache httpd",
        version="2.4.6",
        extrainfo="(CentOS) OpenSSL/1.0.2k-fips PHP/5.4.16",
        cpe=("cpe:/a:apache:http_server:2.4.6",),
    )
    found = {s.key: s for s in identify(web)}
    assert set(found) == {"apache:http_server", "openssl:openssl", "php:php"}
    assert found["openssl:openssl"].version == "1.0.2k"
    assert all(s.confidence is Confidence.LOW for s in found.values())  # a CentOS build


@pytest.mark.parametrize(
    "open_port",
    [
        port(80, "http", cpe=("cpe:/a:igor_sysoev:nginx",)),  # no version
        port(21, "ftp", product="vsftpd", version="2.0.8 or later", cpe=("cpe:/a:vsftpd:vsftpd",)),
        port(3389, "ms-wbt-server", probed=False, cpe=("cpe:/a:microsoft:rdp:10",)),  # guessed
    ],
)
def test_unknown_or_guessed_versions_give_no_version(open_port):
    assert all(not s.version for s in identify(open_port))


def test_services_collector_hands_its_software_to_the_vulnerability_rules():
    ssh = port(22, "ssh", product="OpenSSH", version="7.4", cpe=("cpe:/a:openbsd:openssh:7.4",))
    from collectors.services import _observation
    from collectors.services._nmap import HostReport

    observation = _observation(
        ADDRESS, "palvelin", HostReport(ADDRESS, HostState.UP, (ssh,)), {}, {}
    )
    (sighting,) = ServicesCollector().software(observation)
    assert sighting.subject == f"{ADDRESS}:22/tcp"
    assert sighting.reproduce == f"nmap -n -Pn -sT -sV -p 22 {ADDRESS}"


# --- change detection --------------------------------------------------------------------


def test_port_open_now_but_not_last_time_is_a_new_service():
    baseline = Baseline(frozenset({"22/tcp", "443/tcp"}), {"tcp": "1-9999"})
    now = (port(22, "ssh"), port(443, "http", tunnel="ssl"), port(8080, "http"))
    assert findings(*now, baseline=baseline) == at(8080, "services.change.new_port")


def test_first_scan_is_a_baseline_and_unscanned_ports_are_not_new():
    assert findings(port(8080, "http")) == set()
    narrower = Baseline(frozenset({"22/tcp"}), {"tcp": "21-23,443"})
    assert findings(port(22, "ssh"), port(8080, "http"), baseline=narrower) == set()


def test_baseline_reads_the_stored_json_of_the_previous_facts():
    previous = HostFacts(ADDRESS, (port(22, "ssh"), port(6379, "redis")), {"tcp": "21-23,6379"})
    stored = json.loads(json.dumps(to_jsonable(previous)))
    baseline = Baseline.from_previous(stored)
    assert baseline == Baseline(frozenset({"22/tcp", "6379/tcp"}), {"tcp": "21-23,6379"})
    assert Baseline.from_previous({"open_ports": "garbage"}) is None
    assert Baseline.from_previous(None) is None


def test_port_ranges_parse_and_ignore_junk():
    assert parse_port_ranges("21-23,445,x-1,") == {21, 22, 23, 445}


# --- evidence ----------------------------------------------------------------------------


def test_evidence_has_port_service_product_version_cpe_and_a_reproduce_command():
    rdp = port(
        3389,
        "ms-wbt-server",
        product="Microsoft Terminal Services",
        cpe=("cpe:/o:microsoft:windows",),
    )
    (draft,) = checked(judge_host, HostFacts(ADDRESS, (rdp,), {}))
    assert draft.subject == f"{ADDRESS}:3389/tcp"
    assert draft.evidence == {
        "address": ADDRESS,
        "port": 3389,
        "protocol": "tcp",
        "service": "ms-wbt-server",
        "tunnel": "",
        "product": "Microsoft Terminal Services",
        "version": "",
        "extrainfo": "",
        "cpe": ["cpe:/o:microsoft:windows"],
        "matched_by": "service",
    }
    assert draft.reproduce == f"nmap -n -Pn -sT -sV -p 3389 {ADDRESS}"


def test_hostile_banner_strings_are_kept_as_data():
    hostile = port(
        3306,
        "mysql",
        product="<script>alert(1)</script>",
        version="8.0.36'; rm -rf /" + "A" * 5000,
        extrainfo="\udcff\x00",
    )
    (draft, *_) = checked(judge_host, HostFacts(ADDRESS, (hostile,), {}))
    assert draft.evidence["product"] == "<script>alert(1)</script>"
    json.dumps(to_jsonable(draft.evidence))


def test_collector_judge_uses_the_observation_facts():
    facts = HostFacts(ADDRESS, (port(23, "telnet"),), {"tcp": "23"})
    observation = SubjectObservation(ADDRESS, ADDRESS, SubjectStatus.OK, facts=facts)
    assert {d.check_id for d in checked(ServicesCollector().judge, observation)} == {
        "services.exposed.telnet",
        "services.cleartext.telnet",
    }


def test_every_rule_names_a_service_or_product_and_a_fallback_port():
    for rule in SERVICE_RULES:
        assert (rule.services or rule.products) and rule.ports, rule.check_id


# --- options and the nmap command line ---------------------------------------------------


def test_default_command_scans_the_risky_list_without_dns_and_never_port_2024():
    command = build_command(
        ["127.60.2.20", "127.60.3.0/28"], ServicesOptions(), privileged=True, host_timeout_s=300
    )
    argv = command.argv()
    assert argv[:5] == ["nmap", "-oX", "-", "127.60.2.20", "127.60.3.0/28"]
    assert "-n" in argv and "-sS" in argv and "-sV" in argv
    ports = argv[argv.index("-p") + 1]
    assert ports.startswith("T:21,22,23,") and "2024" not in ports.split(",")
    assert argv[argv.index("--exclude-ports") + 1] == "2024"
    assert argv[argv.index("--host-timeout") + 1] == "300s"
    assert "-Pn" not in argv and "-sU" not in argv


def test_command_follows_the_options():
    options = ServicesOptions.model_validate(
        {"ports": "top1000", "timing": 4, "version_intensity": 2, "scripts": False}
    )
    argv = build_command(["127.60.2.20"], options, privileged=False, host_timeout_s=30).argv()
    assert "-sT" in argv and "-sS" not in argv and "-T4" in argv
    assert argv[argv.index("--top-ports") + 1] == "1000"
    assert argv[argv.index("--version-intensity") + 1] == "2"
    assert "--script" not in argv and "-p" not in argv


def test_an_nmap_process_gets_its_share_of_the_rate_and_its_tightest_network_limit():
    # Given a hosting provider's /22 limited to 6 connections, the default /24s to 16
    limiter = Politeness(
        PolitenessSettings.model_validate(
            {"new_per_second": 90, "networks": [{"network": "127.64.0.0/22", "connections": 6}]}
        )
    )
    # Then a batch in an ordinary /24 gets the per-network limit, and a third of the rate
    assert NmapLimits.share(limiter, ["127.60.2.20", "127.60.2.21"], 3) == NmapLimits(30.0, 16)
    # And a batch with one address (or network) in the provider's /22 gets its limit
    assert NmapLimits.share(limiter, ["127.60.2.20", "127.64.1.0/28"], 3).probes_at_once == 6
    argv = build_command(
        ["127.60.2.20"],
        ServicesOptions(),
        privileged=True,
        host_timeout_s=60,
        limits=NmapLimits(12.5, 4),
    ).argv()
    assert argv[argv.index("--max-rate") + 1] == "12.5"
    assert argv[argv.index("--max-parallelism") + 1] == "4"


def test_every_wait_is_bounded_by_the_options():
    # Given the defaults: no probe, script or host may keep nmap waiting for minutes
    argv = build_command(["127.60.2.20"], ServicesOptions(), privileged=True, host_timeout_s=60)
    argv_text = " ".join(argv.argv())
    assert "--host-timeout 60s" in argv_text
    assert "--max-rtt-timeout 1000ms" in argv_text and "--max-retries 2" in argv_text
    assert "--script-timeout 20s" in argv_text
    # And each is a setting
    options = ServicesOptions.model_validate(
        {"host_timeout": 15, "max_rtt_timeout": 0.25, "max_retries": 0, "script_timeout": 5}
    )
    argv_text = " ".join(
        build_command(["127.60.2.20"], options, privileged=True, host_timeout_s=15).argv()
    )
    assert "--max-rtt-timeout 250ms" in argv_text and "--max-retries 0" in argv_text
    assert "--script-timeout 5s" in argv_text and "--host-timeout 15s" in argv_text


def test_the_follow_up_for_a_cut_host_finds_open_ports_only():
    argv = build_command(
        ["127.60.2.20"], ServicesOptions(), privileged=True, host_timeout_s=60, versions=False
    ).argv()
    assert "-sV" not in argv and "--script" not in argv
    assert argv[argv.index("--exclude-ports") + 1] == "2024" and "-n" in argv


def test_a_cut_host_is_replaced_by_its_port_scan_marked_as_cut():
    report = parse_report(NMAP_XML)
    ports_only = parse_report(NMAP_XML.replace(b'timedout="true"', b""))
    merged = report.with_cut_hosts(ports_only, 60.0).hosts
    assert merged["127.60.2.21"].versions_cut_after == 60.0
    assert merged["127.60.2.21"].state is HostState.UP
    assert merged["127.60.2.20"] == report.hosts["127.60.2.20"]


def test_udp_adds_the_udp_port_list():
    options = ServicesOptions.model_validate({"ports": [22, 3389], "udp": True})
    argv = build_command(["127.60.2.20"], options, privileged=True, host_timeout_s=30).argv()
    assert "-sU" in argv and argv[argv.index("-p") + 1] == "T:22,3389,U:161"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"ports": "all"}, "ports"),
        ({"ports": [0, 22]}, "not port numbers"),
        ({"ports": []}, "empty"),
        ({"timing": 6}, "timing"),
        ({"udp": True, "ports": "top100"}, "explicit TCP port list"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_options_are_refused_with_the_setting_named(raw, problem):
    with pytest.raises(ValidationError, match=problem):
        ServicesOptions.model_validate(raw)


# --- nmap's XML --------------------------------------------------------------------------

NMAP_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<nmaprun scanner="nmap" args="nmap ..." version="7.93" xmloutputversion="1.05">
<scaninfo type="syn" protocol="tcp" numservices="3" services="22,443,3389"/>
<host><status state="up" reason="localhost-response"/>
<address addr="127.60.2.20" addrtype="ipv4"/>
<ports><extraports state="closed" count="1"><extrareasons reason="reset" count="1"/></extraports>
<port protocol="tcp" portid="22"><state state="open" reason="syn-ack"/><service name="ssh"
 product="OpenSSH" version="7.4" extrainfo="protocol 2.0" method="probed" conf="10">
 <cpe>cpe:/a:openbsd:openssh:7.4</cpe><cpe>cpe:/o:linux:linux_kernel</cpe></service></port>
<port protocol="tcp" portid="443"><state state="open" reason="syn-ack"/><service name="http"
 product="&lt;b&gt;evil&lt;/b&gt; \\xff" tunnel="ssl" method="probed" conf="10"/>
 <script id="ssl-cert" output="Subject: commonName=www"/>
 <script id="fingerprint-strings" output="junk"/></port>
</ports></host>
<host starttime="1" endtime="2" timedout="true"><status state="up" reason="localhost-response"/>
<address addr="127.60.2.21" addrtype="ipv4"/></host>
<host><status state="down" reason="no-response"/><address addr="127.60.2.22" addrtype="ipv4"/>
</host>
<host><status state="up" reason="echo-reply"/><address addr="127.60.2.23" addrtype="ipv4"/>
<ports><extraports state="filtered" count="3"/></ports></host>
<runstats><finished time="2" elapsed="1.0" exit="success"/>
<hosts up="3" down="1" total="4"/></runstats>
</nmaprun>
"""


def test_report_keeps_tunnel_probe_method_every_cpe_and_only_our_scripts():
    report = parse_report(NMAP_XML)
    assert report.scanned == {"tcp": "22,443,3389"}
    host = report.hosts["127.60.2.20"]
    assert (host.state, host.closed_ports) == (HostState.UP, 1)
    ssh, https = host.open_ports
    assert ssh == OpenPort(
        22,
        "tcp",
        "ssh",
        probed=True,
        product="OpenSSH",
        version="7.4",
        extrainfo="protocol 2.0",
        cpe=("cpe:/a:openbsd:openssh:7.4", "cpe:/o:linux:linux_kernel"),
    )
    assert https.tunnel == "ssl" and https.product == "<b>evil</b> \\xff"
    assert https.scripts == {"ssl-cert": "Subject: commonName=www"}


def test_report_tells_timed_out_down_and_silent_hosts_apart():
    hosts = parse_report(NMAP_XML).hosts
    assert hosts["127.60.2.21"].state is HostState.TIMED_OUT
    assert hosts["127.60.2.22"].state is HostState.DOWN
    silent = hosts["127.60.2.23"]
    assert (silent.state, silent.open_ports, silent.closed_ports) == (HostState.UP, (), 0)


def test_unreadable_report_means_nmap_is_broken():
    with pytest.raises(NmapBroken, match="nmap at '/opt/nmap' is broken: its XML report"):
        parse_report(b"<nmaprun><host>", "/opt/nmap")


def test_facts_round_trip_through_json_for_the_next_scan():
    facts = HostFacts(
        ADDRESS, (port(22, "ssh", cpe=("cpe:/a:x:y:1",), scripts={"a": "b"}),), {"tcp": "22"}
    )
    stored = json.loads(json.dumps(to_jsonable(facts)))
    assert [OpenPort.from_dict(p) for p in stored["open_ports"]] == list(facts.open_ports)


def test_ipv6_targets_get_their_own_address_family_flag():
    v6 = build_command(
        ["2001:db8::7", "2001:db8:1::/120"], ServicesOptions(), privileged=True, host_timeout_s=30
    )
    v4 = build_command(["127.60.2.20"], ServicesOptions(), privileged=True, host_timeout_s=30)
    assert "-6" in v6.arguments and "-6" not in v4.arguments


# Facts that, between them, raise every check the services collector declares
# (tests/test_rule_coverage.py holds every collector to this).
PLANTED = [
    *(
        HostFacts(ADDRESS, (port(min(r.ports), min(r.services), protocol=r.protocol),), {})
        for r in SERVICE_RULES
    ),
    HostFacts(ADDRESS, (port(6379, "redis", scripts={"redis-info": REDIS_INFO}),), {}),
    HostFacts(ADDRESS, (port(22, "ssh", cpe=("cpe:/a:openbsd:openssh:7.4",)),), {}),
    HostFacts(
        ADDRESS,
        (port(8080, "http"),),
        {"tcp": "1-9999"},
        baseline=Baseline(frozenset({"22/tcp"}), {"tcp": "1-9999"}),
    ),
]
