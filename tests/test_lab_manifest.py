"""The lab's ground truth and its start-up checks, without starting the lab."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest

from riskiturva.checks import CHECK_ID, load_registry
from riskiturva.config import Config, load_config
from riskiturva.lab import estate
from riskiturva.lab._pki import LabCA
from riskiturva.lab.estate import LabError
from riskiturva.lab.manifest import Manifest, load_manifest


def test_manifest_plants_every_required_weakness_and_names_clean_endpoints() -> None:
    manifest = load_manifest()
    planted = {check for _, _, check in manifest.planted()}
    required = {
        "email.dmarc.missing", "email.dmarc.policy_none", "email.dmarc.syntax_error",
        "email.spf.missing", "email.spf.pass_all", "email.spf.softfail_all",
        "email.spf.too_many_lookups", "email.spf.include_loop", "email.spf.multiple",
        "email.dkim.key_under_2048", "dns.axfr.open", "dns.cname.dangling", "dns.ns.single",
        "dns.caa.missing", "dns.dnssec.unsigned", "dns.dnssec.bogus",
        "tls.protocol.tls1_0", "tls.protocol.tls1_1", "tls.cipher.null_export_anon",
        "tls.certificate.expired", "tls.certificate.expires_14d", "tls.certificate.self_signed",
        "tls.certificate.hostname_mismatch", "tls.certificate.missing_intermediate",
        "tls.certificate.weak_key", "tls.certificate.weak_signature", "web.https.no_redirect",
        "web.hsts.missing", "web.hsts.short_max_age", "web.headers.csp_missing",
        "web.security_txt.missing", "email.smtp.starttls_missing", "services.exposed.telnet",
        "services.exposed.ftp", "services.exposed.rdp", "services.exposed.smb",
        "services.exposed.mysql", "services.exposed.elasticsearch", "services.exposed.redis",
        "services.database.no_auth", "software.kev.ransomware", "software.kev.present",
        "software.kev.unconfirmed", "software.epss.high", "software.eol.past",
        "software.eol.extended_support",
    }  # fmt: skip
    assert required <= planted
    clean_collectors = {e.collector for e in manifest.clean()}
    assert clean_collectors == {"tls", "web", "dns_email", "services"}
    hyvala = next(m for m in manifest.municipalities if m.slug == "hyvala")
    declared = [e for e in hyvala.expect if not e.discovered]
    assert all(e.clean for e in declared), "the well-kept municipality must raise nothing"


def test_manifest_check_ids_are_well_formed_and_registered() -> None:
    manifest = load_manifest()
    ids = {c for e in manifest.expectations for c in (*e.checks, *e.may)}
    assert all(CHECK_ID.match(i) for i in ids), sorted(i for i in ids if not CHECK_ID.match(i))
    registry = load_registry()
    registered_categories = {check_id.split(".")[0] for check_id in registry}
    unregistered = {
        i for i in ids if i.split(".")[0] in registered_categories and i not in registry
    }
    assert not unregistered


def test_verify_reports_missed_and_unexpected_findings() -> None:
    manifest = load_manifest()
    expected = {(s, c) for coll, s, c in manifest.planted() if coll == "web"}
    assert manifest.verify("web", expected).ok
    missed = next(iter(expected))
    verdict = manifest.verify(
        "web", (expected - {missed}) | {("www.hyvala.test", "web.hsts.missing")}
    )
    assert verdict.missing == {missed}
    assert verdict.unexpected == {("www.hyvala.test", "web.hsts.missing")}


def test_missing_system_packages_name_the_apt_get_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(estate, "_which", lambda program: None)
    with pytest.raises(LabError, match="apt-get install -y knot nginx-light redis-server vsftpd"):
        estate.check_system_programs()


def lab_config(manifest: Manifest, folder: Path, dns_port: int) -> Config:
    """The lab's configuration for `manifest`, loaded; the files it names are checked when
    it loads, so real ones are written."""
    ca = LabCA(folder, dt.datetime.now(dt.UTC)).root_path
    anchors = folder / "trust-anchors.txt"
    anchors.write_text(". IN DS 20326 8 2 " + "E0" * 32 + "\n")
    path = folder / "riskiturva.toml"
    path.write_text(estate.riskiturva_config(manifest, ca, anchors, dns_port), encoding="utf-8")
    return load_config(path)


def test_generated_config_validates_offline(tmp_path: Path) -> None:
    manifest = load_manifest()
    config = lab_config(manifest, tmp_path, 5353)
    assert config.settings.resolver.port == 5353
    hyvala = config.organisations[0]
    assert hyvala.name.fi == "Hyvälän kunta"
    assert hyvala.scope.covers_address("127.53.0.1") and hyvala.scope.covers_address("127.53.1.1")
    assert [p.organisations for p in config.partners] == [
        ("hyvala", "rapala", "sekala", "koivula", "vaarala")
    ]


def test_an_estate_of_clones_gives_each_municipality_its_own_names_and_addresses(
    tmp_path: Path,
) -> None:
    own = load_manifest()
    manifest = load_manifest(municipalities=309)
    assert len(manifest.municipalities) == 309
    assert manifest.municipalities[: len(own.municipalities)] == own.municipalities
    clones = manifest.municipalities[len(own.municipalities) :]
    for field in ("slug", "domain", "network"):
        values = [getattr(m, field) for m in manifest.municipalities]
        assert len(set(values)) == 309, field
    addresses = [h.ip for h in manifest.hosts]
    assert len(set(addresses)) == len(addresses)
    own_networks = [ipaddress.IPv4Network(m.network) for m in own.municipalities]
    for clone in clones:
        template = own.municipalities[(int(clone.slug[1:])) % len(own.municipalities)]
        assert len(clone.hosts) == len(template.hosts) and clone.expect == ()
        assert all(
            h.fqdn.endswith("." + clone.domain) or h.fqdn == clone.domain for h in clone.hosts
        )
        assert not any(ipaddress.IPv4Address(h.ip) in n for h in clone.hosts for n in own_networks)
        assert not {"ftp", "redis"} & {s for h in clone.hosts for s in h.services}
    # The lab's configuration for it validates, every clone an organisation of the partner
    config = lab_config(manifest, tmp_path, 53)
    assert len(config.organisations) == 309
    assert {"k000", "k302"} <= set(config.partners[0].organisations)


@pytest.mark.parametrize("size", [0, 4, 5001])
def test_an_estate_smaller_than_the_lab_or_too_large_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match=r"from 5 \(the lab's own\) to 5000"):
        load_manifest(municipalities=size)
