"""A corpus of malformed configurations: each one is refused naming file, line and field.

Every case starts from one valid file (`BASE`) and breaks it in one way. The loader must
refuse it with a problem at the expected field and line, `riskiturva config check` must
exit 2 with that problem in its words and never a traceback, and no secret written in the
file may appear in anything it prints.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from riskiturva.config import ConfigError, load_config
from riskiturva_cli import commands as cli

RISKITURVA = str(Path(sys.executable).parent / "riskiturva")

BASE = """\
[settings]
data_dir = "data"

[settings.resolver]
nameservers = ["127.0.0.1"]
port = 53
timeout = 2.0
retries = 1

[settings.timeouts]
connect = 5.0

[settings.reports.smtp]
host = "127.0.0.1"
port = 587

[[partners]]
slug = "seutu"
name = "Seudun IT"
organisations = ["hyvala", "rapala"]

[[organisations]]
slug = "hyvala"
name = { fi = "Hyvälän kunta", sv = "Hyvälä kommun", en = "Hyvälä" }
report_recipients = ["it@hyvala.test"]

[organisations.scope]
domains = ["hyvala.test"]
networks = ["127.60.1.0/24"]

[[organisations.assets]]
kind = "domain"
value = "hyvala.test"
criticality = "high"

[[organisations.assets]]
kind = "ip"
value = "127.60.1.10"

[[organisations]]
slug = "rapala"
name = { fi = "Rapalan kunta", sv = "Rapala kommun", en = "Rapala" }

[organisations.scope]
domains = ["rapala.test"]
networks = ["127.60.2.0/24"]

[[organisations.assets]]
kind = "host"
value = "www.rapala.test"
"""


@dataclass(frozen=True)
class Case:
    """Replace `old` (its first occurrence) in BASE with `new`; expect a problem at
    `field` whose message holds `message`, on the line holding `at` (its `nth` time)."""

    id: str
    old: str
    new: str
    field: str
    message: str
    at: str | None = None
    nth: int = 1
    secret: str | None = None  # must appear nowhere in the output

    def text(self, tmp_path: Path) -> str:
        assert self.old in BASE, self.id
        return BASE.replace(self.old, self.new.replace("{tmp}", str(tmp_path)), 1)


def nest(depth: int, opening: str, closing: str, inner: str = "1") -> str:
    return opening * depth + inner + closing * depth


SETTINGS = '[settings]\ndata_dir = "data"\n'
RESOLVER = "[settings.resolver]\n"
SMTP = '[settings.reports.smtp]\nhost = "127.0.0.1"\n'
HYVALA_SCOPE = 'domains = ["hyvala.test"]\nnetworks = ["127.60.1.0/24"]'
RAPALA_SCOPE = 'domains = ["rapala.test"]\nnetworks = ["127.60.2.0/24"]'
RAPALA = '[[organisations]]\nslug = "rapala"'
PARTNER = '[[partners]]\nslug = "seutu"'
IP_ASSET = 'kind = "ip"\nvalue = "127.60.1.10"'
SHARED = (
    '[[shared_scope]]\norganisations = ["hyvala", "rapala"]\nnetworks = ["127.60.1.0/24"]\n'
    'reason = "a joint service"\n\n'
)
ORGS = 'organisations = ["hyvala", "rapala"]'
SERVICES = "[settings.collectors.services]\n"
DISCOVERY = "[settings.discovery]\n"

# One case per line, as a table.
# fmt: off
CASES = [
    # --- types exactly as TOML wrote them --------------------------------------------------
    Case("port-string", "port = 53", 'port = "53"', "settings.resolver.port", "whole number", 'port = "53"'),
    Case("port-float", "port = 53", "port = 53.5", "settings.resolver.port", "whole number", "port = 53.5"),
    Case("port-zero", "port = 53", "port = 0", "settings.resolver.port", "greater than or equal to 1", "port = 0"),
    Case("port-too-big", "port = 53", "port = 70000", "settings.resolver.port", "less than or equal to 65535", "port = 70000"),
    Case("timeout-inf", "timeout = 2.0", "timeout = inf", "settings.resolver.timeout", "finite", "timeout = inf"),
    Case("timeout-nan", "timeout = 2.0", "timeout = nan", "settings.resolver.timeout", "finite", "timeout = nan"),
    Case("timeout-negative", "timeout = 2.0", "timeout = -1.0", "settings.resolver.timeout", "greater than 0", "timeout = -1.0"),
    Case("timeout-zero", "timeout = 2.0", "timeout = 0.0", "settings.resolver.timeout", "greater than 0", "timeout = 0.0"),
    Case("timeout-string", "timeout = 2.0", 'timeout = "2"', "settings.resolver.timeout", "must be a number", 'timeout = "2"'),
    Case("timeout-huge", "timeout = 2.0", "timeout = 1e9", "settings.resolver.timeout", "less than or equal to 60", "timeout = 1e9"),
    Case("connect-minus-inf", "connect = 5.0", "connect = -inf", "settings.timeouts.connect", "finite", "connect = -inf"),
    Case("retries-bool", "retries = 1", "retries = true", "settings.resolver.retries", "whole number", "retries = true"),
    Case("nameservers-empty", 'nameservers = ["127.0.0.1"]', "nameservers = []", "settings.resolver.nameservers", "at least 1", "nameservers = []"),
    Case("nameservers-number", 'nameservers = ["127.0.0.1"]', "nameservers = [127]", "settings.resolver.nameservers[0]", "must be a string", "nameservers = [127]"),
    Case("nameservers-a-name", 'nameservers = ["127.0.0.1"]', 'nameservers = ["dns.example"]', "settings.resolver.nameservers[0]", "not an IP address", "dns.example"),
    Case("nameservers-not-array", 'nameservers = ["127.0.0.1"]', 'nameservers = "127.0.0.1"', "settings.resolver.nameservers", "must be an array", 'nameservers = "127.0.0.1"'),
    Case("concurrency-zero", RESOLVER, "[settings.concurrency]\ntargets = 0\n" + RESOLVER, "settings.concurrency.targets", "greater than or equal to 1", "targets = 0"),
    Case("jitter-negative", RESOLVER, "[settings.schedules]\njitter_seconds = -5\n" + RESOLVER, "settings.schedules.jitter_seconds", "greater than or equal to 0", "jitter_seconds"),
    Case("user-agent-empty", SETTINGS, SETTINGS + 'user_agent = ""\n', "settings.user_agent", "at least 1 character", "user_agent"),
    Case("session-hours-inf", RESOLVER, "[settings.dashboard]\nsession_hours = inf\n" + RESOLVER, "settings.dashboard.session_hours", "finite", "session_hours"),
    Case("idle-longer-than-session", RESOLVER, "[settings.dashboard]\nsession_hours = 1.0\nsession_idle_minutes = 90\n" + RESOLVER, "settings.dashboard", "longer than session_hours", "[settings.dashboard]"),
    Case("trusted-proxy-a-name", RESOLVER, '[settings.dashboard]\ntrusted_proxies = ["proxy.example"]\n' + RESOLVER, "settings.dashboard.trusted_proxies[0]", "not an IP network", "trusted_proxies"),
    Case("trusted-proxy-host-bits", RESOLVER, '[settings.dashboard]\ntrusted_proxies = ["10.0.0.1/8"]\n' + RESOLVER, "settings.dashboard.trusted_proxies[0]", "host bits set", "trusted_proxies"),
    Case("trusted-proxies-not-array", RESOLVER, '[settings.dashboard]\ntrusted_proxies = "10.0.0.1"\n' + RESOLVER, "settings.dashboard.trusted_proxies", "must be an array", "trusted_proxies"),
    Case("login-backoff-zero", RESOLVER, "[settings.dashboard]\nlogin_backoff_seconds = 0.0\n" + RESOLVER, "settings.dashboard.login_backoff_seconds", "greater than 0", "login_backoff_seconds"),
    Case("allow-wide-string", HYVALA_SCOPE, HYVALA_SCOPE + '\nallow_wide_networks = "yes"', "organisations[0].scope.allow_wide_networks", "true or false", "allow_wide_networks"),
    Case("scope-limit-zero", RESOLVER, "[settings.scope]\nwidest_ipv4_network = 0\n" + RESOLVER, "settings.scope.widest_ipv4_network", "greater than or equal to 1", "widest_ipv4_network"),
    # --- the data folder and the database --------------------------------------------------
    Case("data-dir-is-a-file", 'data_dir = "data"', 'data_dir = "afile.txt"', "settings.data_dir", "is a file", "data_dir"),
    Case("data-dir-under-a-file", 'data_dir = "data"', 'data_dir = "afile.txt/data"', "settings.data_dir", "cannot be created", "data_dir"),
    Case("data-dir-number", 'data_dir = "data"', "data_dir = 5", "settings.data_dir", "must be a string", "data_dir"),
    Case("database-notadb", SETTINGS, SETTINGS + 'database_url = "notadb://x"\n', "settings.database_url", "unsupported database 'notadb'", "database_url"),
    Case("database-mysql", SETTINGS, SETTINGS + 'database_url = "mysql://u@db.example/r"\n', "settings.database_url", "unsupported database 'mysql'", "database_url"),
    Case("database-garbage", SETTINGS, SETTINGS + 'database_url = "not a url"\n', "settings.database_url", "not a database URL", "database_url"),
    Case("database-async-driver", SETTINGS, SETTINGS + 'database_url = "postgresql+asyncpg://u@h/r"\n', "settings.database_url", "asynchronous", "database_url"),
    Case("database-password-hidden", SETTINGS, SETTINGS + 'database_url = "notadb://riskiturva:Sal4sana-77@db/r"\n', "settings.database_url", "unsupported database", "database_url", secret="Sal4sana-77"),
    # --- unknown keys and tables -----------------------------------------------------------
    Case("queue-workers-on-sqlite", SETTINGS, SETTINGS + '[settings.queue]\nrunner = "workers"\n', "settings.queue.runner", "set database_url to PostgreSQL", 'runner = "workers"'),
    Case("queue-visibility-too-short", SETTINGS, SETTINGS + "[settings.queue]\ntask_time_limit_seconds = 600\nvisibility_timeout_seconds = 300\n", "settings.queue.visibility_timeout_seconds", "longer than task_time_limit_seconds", "visibility_timeout_seconds"),
    Case("queue-not-redis", SETTINGS, SETTINGS + '[settings.queue]\nredis_url = "amqp://q"\n', "settings.queue.redis_url", "not a Redis URL", "redis_url"),
    Case("unknown-settings-key", SETTINGS, SETTINGS + 'data_dirr = "x"\n', "settings.data_dirr", "did you mean 'data_dir'", "data_dirr"),
    Case("unknown-top-level-key", SETTINGS, 'organisation = "hyvala"\n' + SETTINGS, "organisation", "did you mean 'organisations'", "organisation ="),
    Case("unknown-resolver-key", "retries = 1", "retries = 1\nretry = 3", "settings.resolver.retry", "did you mean 'retries'", "retry = 3"),
    Case("unknown-source-key", SETTINGS, 'source = "elsewhere.toml"\n' + SETTINGS, "source", "unknown key", "source ="),
    Case("unknown-scope-key", HYVALA_SCOPE, 'domain = ["hyvala.test"]\n' + HYVALA_SCOPE, "organisations[0].scope.domain", "did you mean 'domains'", "domain = "),
    Case("unknown-asset-key", IP_ASSET, IP_ASSET + '\ncritical = "high"', "organisations[0].assets[1].critical", "did you mean 'criticality'", "critical ="),
    # --- collector options -----------------------------------------------------------------
    Case("collector-misspelt", RESOLVER, "[settings.collectors.tlss]\nmax_retries = 1\n" + RESOLVER, "settings.collectors.tlss", "unknown collector; did you mean 'tls'", "[settings.collectors.tlss]"),
    Case("collector-unknown", RESOLVER, "[settings.collectors.nessus]\nlevel = 1\n" + RESOLVER, "settings.collectors.nessus", "unknown collector (known: dns_email, services, tls, web)", "[settings.collectors.nessus]"),
    Case("collectors-not-a-table", SETTINGS, SETTINGS + "collectors = 5\n", "settings.collectors", "must be a table", "collectors = 5"),
    Case("services-ports-all", RESOLVER, SERVICES + 'ports = "all"\n' + RESOLVER, "settings.collectors.services.ports", "'risky', 'top100' or 'top1000'", 'ports = "all"'),
    Case("services-ports-strings", RESOLVER, SERVICES + 'ports = ["80"]\n' + RESOLVER, "settings.collectors.services.ports[0]", "whole number", 'ports = ["80"]'),
    Case("services-port-zero", RESOLVER, SERVICES + "ports = [0, 22]\n" + RESOLVER, "settings.collectors.services.ports", "not port numbers", "ports = [0, 22]"),
    Case("services-ports-empty", RESOLVER, SERVICES + "ports = []\n" + RESOLVER, "settings.collectors.services.ports", "empty", "ports = []"),
    Case("services-timing", RESOLVER, SERVICES + "timing = 6\n" + RESOLVER, "settings.collectors.services.timing", "less than or equal to 5", "timing = 6"),
    Case("services-udp-with-top", RESOLVER, SERVICES + 'udp = true\nports = "top100"\n' + RESOLVER, "settings.collectors.services", "explicit TCP port list", "[settings.collectors.services]"),
    Case("services-unknown-key", RESOLVER, SERVICES + 'colour = "blue"\n' + RESOLVER, "settings.collectors.services.colour", "unknown key", "colour"),
    Case("services-timeout-inf", RESOLVER, SERVICES + "host_timeout = inf\n" + RESOLVER, "settings.collectors.services.host_timeout", "finite", "host_timeout"),
    Case("tls-network-timeout-inf", RESOLVER, "[settings.collectors.tls]\nnetwork_timeout = inf\n" + RESOLVER, "settings.collectors.tls.network_timeout", "finite", "network_timeout"),
    Case("services-rtt-string", RESOLVER, SERVICES + 'max_rtt_timeout = "1s"\n' + RESOLVER, "settings.collectors.services.max_rtt_timeout", "must be a number", "max_rtt_timeout"),
    Case("tls-retries-string", RESOLVER, '[settings.collectors.tls]\nmax_retries = "2"\n' + RESOLVER, "settings.collectors.tls.max_retries", "whole number", "max_retries"),
    Case("dns-port-string", RESOLVER, '[settings.collectors.dns_email]\nnameserver_port = "53"\n' + RESOLVER, "settings.collectors.dns_email.nameserver_port", "whole number", "nameserver_port"),
    Case("web-has-no-options", RESOLVER, "[settings.collectors.web]\nfollow = true\n" + RESOLVER, "settings.collectors.web.follow", "unknown key", "follow = true"),
    Case("schedule-extra-unknown", RESOLVER, '[settings.schedules.extra]\nnessus = "0 1 * * *"\n' + RESOLVER, "settings.schedules.extra.nessus", "no collector 'nessus' is installed", "nessus ="),
    Case("schedule-extra-builtin", RESOLVER, '[settings.schedules.extra]\ntls = "0 1 * * *"\n' + RESOLVER, "settings.schedules.extra.tls", "has its own key", 'tls = "0 1'),
    Case("schedule-bad-cron", RESOLVER, '[settings.schedules]\ntls = "61 * * * *"\n' + RESOLVER, "settings.schedules.tls", "61", 'tls = "61'),
    Case("schedule-timezone", RESOLVER, '[settings.schedules]\ntimezone = "Mars/Olympus"\n' + RESOLVER, "settings.schedules.timezone", "unknown time zone", "timezone"),
    Case("report-language", RESOLVER, '[settings.reports]\nlanguage = "de"\n' + RESOLVER, "settings.reports.language", "'fi', 'sv' or 'en'", 'language = "de"'),
    # --- files the settings name -----------------------------------------------------------
    Case("ca-file-missing", RESOLVER, '[settings.tls]\nextra_ca_files = ["missing-ca.pem"]\n' + RESOLVER, "settings.tls.extra_ca_files[0]", "file not found", "extra_ca_files"),
    Case("ca-file-not-pem", RESOLVER, '[settings.tls]\nextra_ca_files = ["afile.txt"]\n' + RESOLVER, "settings.tls.extra_ca_files[0]", "not PEM certificates", "extra_ca_files"),
    Case("ca-file-not-a-ca", RESOLVER, '[settings.tls]\nextra_ca_files = ["leaf.pem"]\n' + RESOLVER, "settings.tls.extra_ca_files[0]", "not a CA certificate", "extra_ca_files"),
    Case("ca-file-a-folder", RESOLVER, '[settings.tls]\nextra_ca_files = ["a-folder"]\n' + RESOLVER, "settings.tls.extra_ca_files[0]", "not a file", "extra_ca_files"),
    Case("ca-file-second-of-two", RESOLVER, '[settings.tls]\nextra_ca_files = ["ca.pem", "missing.pem"]\n' + RESOLVER, "settings.tls.extra_ca_files[1]", "file not found", "extra_ca_files"),
    Case("anchors-missing", RESOLVER, '[settings.dnssec]\ntrust_anchors_file = "anchors.txt"\n' + RESOLVER, "settings.dnssec.trust_anchors_file", "file not found", "trust_anchors_file"),
    Case("anchors-garbage", RESOLVER, '[settings.dnssec]\ntrust_anchors_file = "afile.txt"\n' + RESOLVER, "settings.dnssec.trust_anchors_file", "not DS/DNSKEY records", "trust_anchors_file"),
    Case("anchors-without-ds", RESOLVER, '[settings.dnssec]\ntrust_anchors_file = "a-records.txt"\n' + RESOLVER, "settings.dnssec.trust_anchors_file", "no DS or DNSKEY records", "trust_anchors_file"),
    Case("smtp-ca-file-missing", SMTP, SMTP + 'ca_file = "relay-ca.pem"\n', "settings.reports.smtp.ca_file", "file not found", "ca_file"),
    Case("smtp-password-file-missing", SMTP, SMTP + 'password_file = "smtp-password"\n', "settings.reports.smtp.password_file", "no such file", "password_file"),
    Case("dashboard-key-too-short", RESOLVER, '[settings.dashboard]\nsecret_key_file = "short.key"\n' + RESOLVER, "settings.dashboard.secret_key_file", "shorter than 32", "secret_key_file"),
    # --- secrets are never echoed ----------------------------------------------------------
    Case("smtp-password-number", SMTP, SMTP + "password = 987654321\n", "settings.reports.smtp.password", "must be a string", "password = 987654321", secret="987654321"),
    Case("smtp-password-misspelt", SMTP, SMTP + 'passwrd = "Hunter2-Salainen"\n', "settings.reports.smtp.passwrd", "did you mean 'password'", "passwrd", secret="Hunter2-Salainen"),
    Case("smtp-password-and-file", SMTP, SMTP + 'password = "Kissa-123-Koira"\npassword_file = "pw"\n', "settings.reports.smtp.password_file", "give password or password_file", "password_file", secret="Kissa-123-Koira"),
    Case("smtp-port-string", "port = 587", 'port = "587"', "settings.reports.smtp.port", "whole number", 'port = "587"'),
    # --- the file as a whole ---------------------------------------------------------------
    Case("empty-file", BASE, "", "", "the file is empty"),
    Case("only-comments", BASE, "# nothing here yet\n\n", "organisations", "required, missing"),
    Case("only-settings", BASE, SETTINGS, "organisations", "required, missing"),
    Case("no-organisations", BASE, "organisations = []\n" + SETTINGS, "organisations", "at least 1", "organisations = []"),
    Case("toml-syntax", 'slug = "rapala"', 'slug = "rapala', "", "TOML syntax error", 'slug = "rapala'),
    Case("toml-duplicate-key", "port = 53", "port = 53\nport = 54", "", "TOML syntax error", "port = 54"),
    Case("deep-array", SETTINGS, SETTINGS + "deep = " + nest(3000, "[", "]") + "\n", "", "nested more than 16"),
    Case("nested-array", SETTINGS, SETTINGS + "deep = " + nest(40, "[", "]") + "\n", "settings.deep" + "[0]" * 14, "nested more than 16", "deep ="),
    Case("deep-inline-table", SETTINGS, SETTINGS + "deep = " + nest(3000, "{a=", "}") + "\n", "", "nested more than 16"),
    Case("nested-inline-table", SETTINGS, SETTINGS + "deep = " + nest(40, "{ a = ", " }") + "\n", "settings.deep" + ".a" * 14, "nested more than 16", "deep ="),
    # --- scope: domains --------------------------------------------------------------------
    Case("scope-domain-number", HYVALA_SCOPE, 'domains = [1]\nnetworks = ["127.60.1.0/24"]', "organisations[0].scope.domains[0]", "must be a string", "domains = [1]"),
    Case("scope-public-suffix", HYVALA_SCOPE, 'domains = ["co.uk", "hyvala.test"]\nnetworks = ["127.60.1.0/24"]', "organisations[0].scope.domains[0]", "public suffix", "co.uk"),
    Case("scope-private-suffix", HYVALA_SCOPE, 'domains = ["github.io", "hyvala.test"]\nnetworks = ["127.60.1.0/24"]', "organisations[0].scope.domains[0]", "public suffix", "github.io"),
    Case("scope-top-level-domain", HYVALA_SCOPE, 'domains = ["test", "hyvala.test"]\nnetworks = ["127.60.1.0/24"]', "organisations[0].scope.domains[0]", "not a valid domain name", '"test"'),
    Case("scope-domain-space", HYVALA_SCOPE, 'domains = ["hyv ala.test", "hyvala.test"]\nnetworks = ["127.60.1.0/24"]', "organisations[0].scope.domains[0]", "not a valid domain name", "hyv ala"),
    Case("scope-domains-not-array", HYVALA_SCOPE, 'domains = "hyvala.test"\nnetworks = ["127.60.1.0/24"]', "organisations[0].scope.domains", "must be an array", 'domains = "hyvala.test"'),
    Case("scope-empty", HYVALA_SCOPE, "domains = []\nnetworks = []", "organisations[0].scope", "no domains and no networks", "[organisations.scope]"),
    # --- scope: networks -------------------------------------------------------------------
    Case("scope-network-number", HYVALA_SCOPE, 'domains = ["hyvala.test"]\nnetworks = [5]', "organisations[0].scope.networks[0]", "CIDR notation as a string", "networks = [5]"),
    Case("scope-network-host-bits", HYVALA_SCOPE, 'domains = ["hyvala.test"]\nnetworks = ["127.60.1.1/24"]', "organisations[0].scope.networks[0]", "host bits set", "127.60.1.1/24"),
    Case("scope-network-garbage", HYVALA_SCOPE, 'domains = ["hyvala.test"]\nnetworks = ["lan"]', "organisations[0].scope.networks[0]", "not an IP network", '"lan"'),
    Case("scope-ipv4-everything", HYVALA_SCOPE, 'domains = ["hyvala.test"]\nnetworks = ["0.0.0.0/0"]', "organisations[0].scope.networks[0]", "whole address space", "0.0.0.0/0"),
    Case("scope-ipv6-everything", HYVALA_SCOPE, HYVALA_SCOPE.replace('/24"]', '/24", "::/0"]'), "organisations[0].scope.networks[1]", "whole address space", "::/0"),
    Case("scope-ipv4-too-wide", HYVALA_SCOPE, 'domains = ["hyvala.test"]\nnetworks = ["127.0.0.0/8"]', "organisations[0].scope.networks[0]", "wider than /16", "127.0.0.0/8"),
    Case("scope-ipv6-too-wide", HYVALA_SCOPE, HYVALA_SCOPE.replace('/24"]', '/24", "2001:db8::/32"]'), "organisations[0].scope.networks[1]", "wider than /48", "2001:db8::/32"),
    Case("scope-wide-even-allowed-not-0", HYVALA_SCOPE, HYVALA_SCOPE.replace('/24"]', '/24", "0.0.0.0/0"]') + "\nallow_wide_networks = true", "organisations[0].scope.networks[1]", "whole address space", "0.0.0.0/0"),
    # --- two organisations claiming the same thing ------------------------------------------
    Case("overlap-same-domain", RAPALA_SCOPE, 'domains = ["rapala.test", "hyvala.test"]\nnetworks = ["127.60.2.0/24"]', "organisations[1].scope.domains[1]", "overlaps the scope of organisation 'hyvala'", '"rapala.test", "hyvala.test"'),
    Case("overlap-subdomain", RAPALA_SCOPE, 'domains = ["rapala.test", "www.hyvala.test"]\nnetworks = ["127.60.2.0/24"]', "organisations[1].scope.domains[1]", "overlaps the scope of organisation 'hyvala' (hyvala.test)", "www.hyvala.test"),
    Case("overlap-same-host-asset", 'value = "www.rapala.test"', 'value = "www.rapala.test"\n\n[[organisations.assets]]\nkind = "host"\nvalue = "www.hyvala.test"', "organisations[1].assets[1].value", "outside the declared scope", 'value = "www.hyvala.test"'),
    Case("overlap-network", RAPALA_SCOPE, 'domains = ["rapala.test"]\nnetworks = ["127.60.2.0/24", "127.60.1.128/25"]', "organisations[1].scope.networks[1]", "overlaps the scope of organisation 'hyvala' (127.60.1.0/24)", "127.60.1.128/25"),
    Case("overlap-shared-elsewhere", RAPALA_SCOPE, 'domains = ["rapala.test"]\nnetworks = ["127.60.2.0/24", "127.60.1.0/24"]', "organisations[1].scope.networks[1]", "declare it in [[shared_scope]]", '"127.60.2.0/24", "127.60.1.0/24"'),
    Case("shared-unknown-org", PARTNER, SHARED.replace('"rapala"]', '"rapla"]') + PARTNER, "shared_scope[0].organisations[1]", "no organisation has this slug", 'organisations = ["hyvala", "rapla"]'),
    Case("shared-not-in-scope", PARTNER, SHARED + PARTNER, "shared_scope[0].networks[0]", "not in the scope of rapala", 'networks = ["127.60.1.0/24"]\nreason'),
    Case("shared-one-org", PARTNER, SHARED.replace('"hyvala", "rapala"', '"hyvala"') + PARTNER, "shared_scope[0].organisations", "at least 2", 'organisations = ["hyvala"]'),
    Case("shared-no-reason", PARTNER, SHARED.replace('reason = "a joint service"\n', "") + PARTNER, "shared_scope[0].reason", "required, missing", "[[shared_scope]]"),
    Case("shared-nothing", PARTNER, SHARED.replace('networks = ["127.60.1.0/24"]\n', "") + PARTNER, "shared_scope[0]", "no shared domains and no shared networks", "[[shared_scope]]"),
    # --- discovery ---------------------------------------------------------------------------
    Case("discovery-source-unknown", RESOLVER, DISCOVERY + 'sources = ["nsec", "nsec3"]\n\n' + RESOLVER, "settings.discovery.sources[1]", "'dns_records', 'nsec', 'axfr'", 'sources = ["nsec", "nsec3"]'),
    Case("discovery-sources-string", RESOLVER, DISCOVERY + 'sources = "nsec"\n\n' + RESOLVER, "settings.discovery.sources", "must be an array", 'sources = "nsec"'),
    Case("discovery-unknown-key", RESOLVER, DISCOVERY + 'source = ["nsec"]\n\n' + RESOLVER, "settings.discovery.source", "did you mean 'sources'", 'source = ["nsec"]'),
    Case("discovery-gone-string", RESOLVER, DISCOVERY + 'gone_after_runs = "3"\n\n' + RESOLVER, "settings.discovery.gone_after_runs", "whole number", 'gone_after_runs = "3"'),
    Case("discovery-gone-zero", RESOLVER, DISCOVERY + "gone_after_runs = 0\n\n" + RESOLVER, "settings.discovery.gone_after_runs", "greater than or equal to 1", "gone_after_runs = 0"),
    Case("discovery-in-flight-huge", RESOLVER, DISCOVERY + "dns_in_flight = 100000\n\n" + RESOLVER, "settings.discovery.dns_in_flight", "less than or equal to 1000", "dns_in_flight = 100000"),
    Case("discovery-label-invalid", RESOLVER, DISCOVERY + 'extra_labels = ["ok", "bad label"]\n\n' + RESOLVER, "settings.discovery.extra_labels[1]", "not a DNS label", 'extra_labels = ["ok", "bad label"]'),
    Case("discovery-ct-url-scheme", RESOLVER, DISCOVERY + '\n[settings.discovery.ct]\nurl = "ftp://crt.sh/"\n\n' + RESOLVER, "settings.discovery.ct.url", "url must be http(s)", 'url = "ftp://crt.sh/"'),
    Case("discovery-ct-timeout-inf", RESOLVER, DISCOVERY + "\n[settings.discovery.ct]\ntimeout = inf\n\n" + RESOLVER, "settings.discovery.ct.timeout", "finite", "timeout = inf"),
    Case("discovery-schedule-invalid", RESOLVER, '[settings.schedules]\ndiscovery = "every night"\n\n' + RESOLVER, "settings.schedules.discovery", "five fields", 'discovery = "every night"'),
    # --- partners ----------------------------------------------------------------------------
    Case("partner-duplicate-slug", PARTNER, f'{PARTNER}\nname = "Toinen"\norganisations = []\n\n{PARTNER}', "partners[1].slug", "duplicate partner slug", 'slug = "seutu"', nth=2),
    Case("org-in-two-partners", PARTNER, f'[[partners]]\nslug = "toinen"\nname = "Toinen"\norganisations = ["rapala"]\n\n{PARTNER}', "partners[1].organisations[1]", "already run by partner 'toinen'", ORGS),
    Case("partner-unknown-member", ORGS, 'organisations = ["hyvala", "rapla"]', "partners[0].organisations[1]", "no organisation has this slug", '"rapla"'),
    Case("partner-member-twice", ORGS, 'organisations = ["hyvala", "hyvala", "rapala"]', "partners[0].organisations[1]", "listed twice", '"hyvala", "hyvala"'),
    Case("partner-name-missing", 'name = "Seudun IT"\n', "", "partners[0].name", "required, missing", "[[partners]]"),
    # --- organisations -----------------------------------------------------------------------
    Case("org-duplicate-slug", 'slug = "rapala"', 'slug = "hyvala"', "organisations[1].slug", "duplicate slug", 'slug = "hyvala"', nth=2),
    Case("org-slug-capitals", 'slug = "rapala"', 'slug = "Rapala"', "organisations[1].slug", "should match pattern", 'slug = "Rapala"'),
    Case("org-name-no-swedish", 'name = { fi = "Rapalan kunta", sv = "Rapala kommun", en = "Rapala" }', 'name = { fi = "Rapalan kunta", en = "Rapala" }', "organisations[1].name.sv", "required, missing", 'name = { fi = "Rapalan kunta", en'),
    Case("org-name-string", 'name = { fi = "Rapalan kunta", sv = "Rapala kommun", en = "Rapala" }', 'name = "Rapala"', "organisations[1].name", "must be a table", 'name = "Rapala"'),
    Case("org-without-assets-or-discovery", '\n[[organisations.assets]]\nkind = "host"\nvalue = "www.rapala.test"\n', "\n[organisations.discovery]\nenabled = false\n", "organisations[1].assets", "no assets and discovery is off", RAPALA),
    Case("org-discovery-enabled-string", HYVALA_SCOPE, HYVALA_SCOPE + '\n\n[organisations.discovery]\nenabled = "no"', "organisations[0].discovery.enabled", "must be true or false", 'enabled = "no"'),
    Case("auto-accept-network-outside-scope", HYVALA_SCOPE, HYVALA_SCOPE + '\n\n[[organisations.discovery.auto_accept]]\nnetworks = ["127.60.3.0/24"]', "organisations[0].discovery.auto_accept[0].networks[0]", "network outside the declared scope networks", 'networks = ["127.60.3.0/24"]'),
    Case("auto-accept-network-not-cidr", HYVALA_SCOPE, HYVALA_SCOPE + '\n\n[[organisations.discovery.auto_accept]]\nnetworks = ["127.60.1.5/24"]', "organisations[0].discovery.auto_accept[0].networks[0]", "not an IP network", 'networks = ["127.60.1.5/24"]'),
    Case("auto-accept-source-unknown", HYVALA_SCOPE, HYVALA_SCOPE + '\n\n[[organisations.discovery.auto_accept]]\nsources = ["nsec3"]', "organisations[0].discovery.auto_accept[0].sources[0]", "not an evidence source", 'sources = ["nsec3"]'),
    Case("auto-accept-kind-unknown", HYVALA_SCOPE, HYVALA_SCOPE + '\n\n[[organisations.discovery.auto_accept]]\nkinds = ["server"]', "organisations[0].discovery.auto_accept[0].kinds[0]", "'domain', 'mail_domain', 'host', 'ip', 'network' or 'url'", 'kinds = ["server"]'),
    Case("auto-accept-unknown-key", HYVALA_SCOPE, HYVALA_SCOPE + '\n\n[[organisations.discovery.auto_accept]]\ncriticallity = "low"', "organisations[0].discovery.auto_accept[0].criticallity", "did you mean 'criticality'", 'criticallity = "low"'),
    Case("recipient-not-email", '["it@hyvala.test"]', '["tietohallinto"]', "organisations[0].report_recipients[0]", "not an e-mail address", "report_recipients"),
    Case("recipient-no-domain", '["it@hyvala.test"]', '["it@"]', "organisations[0].report_recipients[0]", "not an e-mail address", "report_recipients"),
    Case("recipient-number", '["it@hyvala.test"]', "[5]", "organisations[0].report_recipients[0]", "must be a string", "report_recipients"),
    # --- assets ------------------------------------------------------------------------------
    Case("asset-kind-unknown", 'kind = "ip"', 'kind = "server"', "organisations[0].assets[1].kind", "'domain', 'mail_domain', 'host', 'ip', 'network' or 'url'", 'kind = "server"'),
    Case("asset-kind-missing", 'kind = "ip"\n', "", "organisations[0].assets[1].kind", "required, missing", "[[organisations.assets]]", nth=2),
    Case("asset-criticality", 'criticality = "high"', 'criticality = "urgent"', "organisations[0].assets[0].criticality", "'low', 'medium' or 'high'", 'criticality = "urgent"'),
    Case("asset-value-number", 'value = "127.60.1.10"', "value = 12760110", "organisations[0].assets[1].value", "must be a string", "value = 12760110"),
    Case("asset-ip-invalid", 'value = "127.60.1.10"', 'value = "127.60.1.300"', "organisations[0].assets[1].value", "not an IP address", "127.60.1.300"),
    Case("asset-ip-outside-scope", 'value = "127.60.1.10"', 'value = "127.60.3.10"', "organisations[0].assets[1].value", "outside the declared scope networks", "127.60.3.10"),
    Case("asset-host-outside-scope", 'value = "www.rapala.test"', 'value = "www.rapala.example"', "organisations[1].assets[0].value", "outside the declared scope domains", "www.rapala.example"),
    Case("asset-network-outside-scope", IP_ASSET, 'kind = "network"\nvalue = "127.60.0.0/23"', "organisations[0].assets[1].value", "network outside the declared scope", "127.60.0.0/23"),
    Case("asset-url-scheme", IP_ASSET, 'kind = "url"\nvalue = "ftp://hyvala.test/"', "organisations[0].assets[1].value", "url must be http(s)", "ftp://"),
    Case("asset-url-port", IP_ASSET, 'kind = "url"\nvalue = "https://hyvala.test:99999/"', "organisations[0].assets[1].value", "Port out of range", "99999"),
    Case("asset-dkim-on-domain", 'criticality = "high"', 'criticality = "high"\ndkim_selectors = ["s1"]', "organisations[0].assets[0].dkim_selectors", "only meaningful on a mail_domain", "dkim_selectors"),
    Case("asset-dkim-bad-selector", 'kind = "domain"', 'kind = "mail_domain"\ndkim_selectors = ["bad selector"]', "organisations[0].assets[0].dkim_selectors[0]", "not a DKIM selector", "dkim_selectors"),
    Case("asset-tags-string", 'criticality = "high"', 'criticality = "high"\ntags = "website"', "organisations[0].assets[0].tags", "must be an array", 'tags = "website"'),
]
# fmt: on


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """The files the cases point at: a text file, certificates, zone lines, a short key."""
    (tmp_path / "afile.txt").write_text("hello, not a certificate\n")
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-records.txt").write_text(". IN A 192.0.2.1\n")
    (tmp_path / "leaf.pem").write_bytes(_certificate("leaf.hyvala.test", ca=False))
    (tmp_path / "ca.pem").write_bytes(_certificate("Hyvälä CA", ca=True))
    (tmp_path / "pw").write_text("salasana\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "short.key").write_text("too-short\n")
    return tmp_path


def _certificate(common_name: str, *, ca: bool) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _line(text: str, fragment: str, nth: int) -> int:
    """The line on which `fragment` (possibly spanning lines) starts, its `nth` time."""
    start = -1
    for _ in range(nth):
        start = text.index(fragment, start + 1)
    return text.count("\n", 0, start) + 1


def test_the_base_is_valid(corpus_dir):
    path = corpus_dir / "riskiturva.toml"
    path.write_text(BASE, encoding="utf-8")
    config = load_config(path)
    assert [o.slug for o in config.organisations] == ["hyvala", "rapala"]


def test_the_corpus_is_large_and_each_case_distinct():
    assert len(CASES) >= 76
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({(c.old, c.new) for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_configuration_is_refused_naming_file_line_and_field(case, corpus_dir):
    # Given a valid file broken in one way
    path = corpus_dir / "riskiturva.toml"
    text = case.text(corpus_dir)
    path.write_text(text, encoding="utf-8")
    line = _line(text, case.at, case.nth) if case.at else None

    # When it is loaded, then the expected problem is named at its field and line
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    found = [(p.field, p.message, p.line) for p in caught.value.problems]
    assert any(
        field == case.field and case.message in message and number == line
        for field, message, number in found
    ), found

    # And `riskiturva config check` says so, exits 2, and shows no traceback nor secret
    result = CliRunner().invoke(cli.main, ["config", "check", str(path)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert f"{path}: invalid configuration" in result.output
    where = f"line {line}, " if line else ""
    assert f"{where}{case.field or '<file>'}: " in result.output
    if case.secret:
        assert case.secret not in result.output


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "riskiturva.toml"
    path.write_bytes(BASE.encode("utf-8").replace("ä".encode(), b"\xe4"))
    result = CliRunner().invoke(cli.main, ["config", "check", str(path)])
    assert result.exit_code == 2
    assert "file is not UTF-8" in result.output


def test_a_folder_given_as_the_file_is_refused(tmp_path):
    result = CliRunner().invoke(cli.main, ["config", "check", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{tmp_path}: invalid configuration" in result.output
    assert "cannot read file" in result.output


HOSTILE = ("deep-array", "data-dir-is-a-file", "database-notadb", "scope-domain-number")


@pytest.mark.parametrize("case", [c for c in CASES if c.id in HOSTILE], ids=HOSTILE)
def test_the_real_command_prints_no_traceback(case, corpus_dir):
    # The installed command in a process of its own, as an operator runs it
    path = corpus_dir / "riskiturva.toml"
    path.write_text(case.text(corpus_dir), encoding="utf-8")
    result = subprocess.run(
        [RISKITURVA, "config", "check", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert case.field in result.stderr and case.message in result.stderr


# --- what is accepted on purpose -----------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # A wide network the owner authorised, said explicitly
        (
            HYVALA_SCOPE,
            'domains = ["hyvala.test"]\nnetworks = ["127.60.1.0/24", "10.0.0.0/8"]\nallow_wide_networks = true',
        ),
        # A limit raised for the whole estate
        (RESOLVER, "[settings.scope]\nwidest_ipv4_network = 8\n" + RESOLVER),
        # A network two organisations share, declared as shared
        (
            RAPALA_SCOPE,
            'domains = ["rapala.test"]\nnetworks = ["127.60.2.0/24", "127.60.1.0/24"]\n\n' + SHARED,
        ),
        # A domain two organisations share, declared as shared
        (
            RAPALA_SCOPE,
            'domains = ["rapala.test", "yhteinen.hyvala.test"]\nnetworks = ["127.60.2.0/24"]\n\n'
            '[[shared_scope]]\norganisations = ["rapala", "hyvala"]\n'
            'domains = ["yhteinen.hyvala.test"]\nreason = "a joint library portal"\n',
        ),
        # An internationalised domain, and CA and anchor files that parse
        (HYVALA_SCOPE, 'domains = ["hyvala.test", "hyvälä.test"]\nnetworks = ["127.60.1.0/24"]'),
        (RESOLVER, '[settings.tls]\nextra_ca_files = ["ca.pem"]\n' + RESOLVER),
    ],
    ids=["wide-allowed", "limit-raised", "shared-network", "shared-domain", "idn", "ca-file"],
)
def test_deliberate_choices_are_accepted(old, new, corpus_dir):
    path = corpus_dir / "riskiturva.toml"
    path.write_text(BASE.replace(old, new, 1), encoding="utf-8")
    load_config(path)
    result = CliRunner().invoke(cli.main, ["config", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "OK — 2 organisations, 1 partners, 3 assets" in result.output


def test_an_organisation_with_only_its_scope_and_discovery_settings_is_accepted(corpus_dir):
    # Given a municipality onboarded by its scope alone (discovery proposes its assets),
    # every discovery setting and an auto-accept rule inside the scope
    text = BASE.replace(
        '\n[[organisations.assets]]\nkind = "host"\nvalue = "www.rapala.test"\n', "\n"
    )
    text = text.replace(
        RESOLVER,
        '[settings.discovery]\nsources = ["nsec", "axfr", "ct", "ping_sweep"]\n'
        'extra_labels = ["Ajanvaraus2", "www.intra"]\ngone_after_runs = 5\n\n'
        '[settings.discovery.ct]\nurl = "http://127.0.0.1:8080/"\ntimeout = 10\n\n' + RESOLVER,
    )
    text = text.replace(
        HYVALA_SCOPE,
        HYVALA_SCOPE + '\n\n[[organisations.discovery.auto_accept]]\nsources = ["nsec", "ptr"]\n'
        'networks = ["127.60.1.0/25"]\ncriticality = "high"\ntags = ["discovered"]',
    )
    path = corpus_dir / "riskiturva.toml"
    path.write_text(text, encoding="utf-8")

    # When it is loaded, then it is valid as written (labels in their normal form)
    config = load_config(path)
    assert config.organisation("rapala").assets == ()
    assert config.settings.discovery.extra_labels == ("ajanvaraus2", "www.intra")
    assert config.settings.discovery.ct.timeout == 10.0
    rule = config.organisation("hyvala").discovery.auto_accept[0]
    assert [str(n) for n in rule.networks] == ["127.60.1.0/25"]
    result = CliRunner().invoke(cli.main, ["config", "check", str(path)])
    assert result.exit_code == 0, result.output


def test_trust_anchors_in_zone_file_syntax_are_accepted(lab_trust_anchors, corpus_dir):
    path = corpus_dir / "riskiturva.toml"
    text = BASE.replace(
        RESOLVER, f'[settings.dnssec]\ntrust_anchors_file = "{lab_trust_anchors}"\n{RESOLVER}'
    )
    path.write_text(text, encoding="utf-8")
    assert load_config(path).settings.dnssec.trust_anchors_file == lab_trust_anchors


@pytest.fixture
def lab_trust_anchors(tmp_path: Path) -> Path:
    path = tmp_path / "anchors.txt"
    path.write_text(
        ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n"
    )
    return path
