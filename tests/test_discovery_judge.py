"""Discovery's pure parts, offline: judging observations, names, crt.sh answers, auto-accept."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from riskiturva.config import Organisation, Scope
from riskiturva.discovery import _auto_accept, word_list
from riskiturva.discovery.ct import CtUnavailable, parse_crtsh
from riskiturva.discovery.facts import (
    AddressSighting,
    Observations,
    OutsideSighting,
    Resolution,
    Sighting,
    Source,
    ZoneFacts,
)
from riskiturva.discovery.gather import clean_name
from riskiturva.discovery.judge import Evidence, Proposal, judge

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
SCOPE = Scope(domains=("kunta.test",), networks=("192.0.2.0/24",))


def observe(**parts) -> Observations:
    return Observations("kunta", T0, **parts)


def test_a_name_resolving_inside_the_networks_is_proposed_with_its_evidence():
    seen = observe(
        sightings=(
            Sighting("vanha.kunta.test", Source.NSEC, "NSEC chain of kunta.test"),
            Sighting("vanha.kunta.test", Source.CT, "CT log entry 7"),
        ),
        resolutions={"vanha.kunta.test": Resolution("vanha.kunta.test", ("192.0.2.9",))},
    )
    [proposal] = judge(seen, SCOPE).proposals
    assert (proposal.kind, proposal.value, proposal.addresses) == (
        "host",
        "vanha.kunta.test",
        ("192.0.2.9",),
    )
    assert proposal.sources == {"nsec", "ct"}


def test_addresses_outside_the_networks_are_listed_and_not_proposed():
    seen = observe(
        sightings=(Sighting("toimittaja.kunta.test", Source.WORDLIST, "word list on kunta.test"),),
        resolutions={
            "toimittaja.kunta.test": Resolution("toimittaja.kunta.test", ("198.51.100.4",))
        },
    )
    judgement = judge(seen, SCOPE)
    assert judgement.proposals == ()
    assert [(o.value, o.kind, o.via) for o in judgement.outside] == [
        ("198.51.100.4", "address", "address of toimittaja.kunta.test")
    ]


def test_guesses_that_only_the_wildcard_answers_are_dropped_and_counted():
    zone = ZoneFacts("kunta.test", "unsigned", "refused", wildcard=("192.0.2.99",))
    seen = observe(
        sightings=(
            Sighting("www.kunta.test", Source.WORDLIST, "word list on kunta.test"),
            Sighting("mail.kunta.test", Source.WORDLIST, "word list on kunta.test"),
            Sighting("rekry.kunta.test", Source.WORDLIST, "word list on kunta.test"),
            Sighting("uusi.kunta.test", Source.CT, "CT log entry 3"),
        ),
        resolutions={
            "www.kunta.test": Resolution("www.kunta.test", ("192.0.2.99",)),
            "mail.kunta.test": Resolution("mail.kunta.test", ("192.0.2.99",)),
            "rekry.kunta.test": Resolution("rekry.kunta.test", ("192.0.2.40",)),
            # A name CT knows counts even when the wildcard's address answers it.
            "uusi.kunta.test": Resolution("uusi.kunta.test", ("192.0.2.99",)),
        },
        zones=(zone,),
    )
    judgement = judge(seen, SCOPE)
    assert {p.value for p in judgement.proposals} == {"rekry.kunta.test", "uusi.kunta.test"}
    assert judgement.wildcard_answers == 2


def test_a_ptr_name_counts_only_when_it_points_back_at_the_address():
    def ptr(name: str, address: str) -> Sighting:
        return Sighting(name, Source.PTR, f"PTR of {address}", detail={"address": address})

    seen = observe(
        sightings=(ptr("tulostin.kunta.test", "192.0.2.44"), ptr("vanha.kunta.test", "192.0.2.45")),
        resolutions={
            "tulostin.kunta.test": Resolution("tulostin.kunta.test", ("192.0.2.44",)),
            "vanha.kunta.test": Resolution("vanha.kunta.test", ("192.0.2.80",)),
        },
    )
    assert [p.value for p in judge(seen, SCOPE).proposals] == ["tulostin.kunta.test"]


def test_names_that_do_not_exist_or_could_not_be_resolved_are_not_proposed():
    seen = observe(
        sightings=(
            Sighting("poissa.kunta.test", Source.CT, "CT log entry 1"),
            Sighting("hidas.kunta.test", Source.CT, "CT log entry 2"),
        ),
        resolutions={
            "poissa.kunta.test": Resolution("poissa.kunta.test", nxdomain=True),
            "hidas.kunta.test": Resolution("hidas.kunta.test", failed="timeout"),
        },
    )
    assert judge(seen, SCOPE).proposals == ()


def test_a_cname_leaving_the_scope_is_listed_outside_even_without_an_address():
    seen = observe(
        sightings=(Sighting("ftp.kunta.test", Source.WORDLIST, "word list on kunta.test"),),
        resolutions={
            "ftp.kunta.test": Resolution(
                "ftp.kunta.test",
                cnames=("ftp.kunta.test CNAME ftp.toimittaja.test.",),
                nxdomain=True,
            )
        },
    )
    judgement = judge(seen, SCOPE)
    assert judgement.proposals == ()
    assert [o.value for o in judgement.outside] == ["ftp.toimittaja.test"]


def test_zone_cuts_mail_domains_and_live_addresses_become_their_own_kinds():
    seen = observe(
        sightings=(
            Sighting("seutu.kunta.test", Source.NSEC, "NSEC chain of kunta.test", "domain"),
            Sighting("uutiset.kunta.test", Source.NSEC, "NSEC chain of kunta.test", "mail_domain"),
        ),
        addresses=(AddressSighting("192.0.2.5", Source.PING_SWEEP, "ping sweep of 192.0.2.0/24"),),
    )
    kinds = {(p.kind, p.value) for p in judge(seen, SCOPE).proposals}
    assert kinds == {
        ("domain", "seutu.kunta.test"),
        ("mail_domain", "uutiset.kunta.test"),
        ("ip", "192.0.2.5"),
    }


def test_known_names_are_gone_only_on_nxdomain_never_on_a_failed_lookup():
    seen = observe(
        resolutions={
            "poissa.kunta.test": Resolution("poissa.kunta.test", nxdomain=True),
            "hidas.kunta.test": Resolution("hidas.kunta.test", failed="timeout"),
            "www.kunta.test": Resolution("www.kunta.test", ("192.0.2.10",)),
        }
    )
    judgement = judge(seen, SCOPE, ["poissa.kunta.test", "hidas.kunta.test", "www.kunta.test"])
    assert judgement.gone == ("poissa.kunta.test",)
    assert judgement.present == ("www.kunta.test",)


def test_sightings_outside_are_kept_once_per_place():
    outside = OutsideSighting("ns1.toimittaja.test", "name", Source.NS, "NS of kunta.test")
    judgement = judge(observe(outside=(outside, outside)), SCOPE)
    assert judgement.outside == (outside,)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("WWW.Kunta.Test.", "www.kunta.test"),
        ("_sip._tls.kunta.test", "_sip._tls.kunta.test"),
        ("*.kunta.test", None),
        ("<script>alert(1)</script>.kunta.test", None),
        ("localhost", None),
        ("a" * 64 + ".kunta.test", None),
    ],
)
def test_clean_name_keeps_dns_names_and_refuses_anything_else(text, name):
    assert clean_name(text) == name


def test_crtsh_rows_become_one_entry_per_certificate():
    rows = [
        {"id": 11, "issuer_name": "CN=R3", "common_name": "kunta.test",
         "name_value": "kunta.test\nwww.kunta.test", "not_before": "2026-01-01T00:00:00",
         "not_after": "2026-04-01T00:00:00"},
        {"id": 11, "issuer_name": "CN=R3", "common_name": "kunta.test",
         "name_value": "kunta.test\nwww.kunta.test", "not_before": "2026-01-01T00:00:00",
         "not_after": "2026-04-01T00:00:00"},
        {"id": "junk"},
    ]  # fmt: skip
    [entry] = parse_crtsh(json.dumps(rows).encode())
    assert (entry.id, entry.names, entry.issuer) == (11, ("kunta.test", "www.kunta.test"), "CN=R3")


@pytest.mark.parametrize("body", [b"<html>busy</html>", b'{"id": 1}'])
def test_a_crtsh_answer_that_is_not_a_list_is_an_error_not_an_empty_result(body):
    with pytest.raises(CtUnavailable):
        parse_crtsh(body)


def test_auto_accept_rules_match_kind_sources_and_networks():
    org = Organisation.model_validate(
        {
            "slug": "kunta",
            "name": {"fi": "K", "sv": "K", "en": "K"},
            "scope": {"domains": ["kunta.test"], "networks": ["192.0.2.0/24", "198.51.100.0/24"]},
            "discovery": {
                "auto_accept": [{"sources": ["nsec", "ptr"], "networks": ["192.0.2.0/25"]}]
            },
        }
    )
    nsec = (Evidence("nsec", "NSEC chain of kunta.test"),)
    ct = (Evidence("ct", "CT log entry 1"),)
    assert _auto_accept(org, Proposal("host", "a.kunta.test", nsec, ("192.0.2.7",))) is not None
    assert _auto_accept(org, Proposal("host", "b.kunta.test", ct, ("192.0.2.7",))) is None
    assert _auto_accept(org, Proposal("host", "c.kunta.test", nsec, ("192.0.2.200",))) is None
    assert _auto_accept(org, Proposal("domain", "d.kunta.test", nsec)) is None


def test_an_auto_accept_network_outside_the_scope_is_a_configuration_error():
    with pytest.raises(ValueError, match="outside the declared scope networks"):
        Organisation.model_validate(
            {
                "slug": "kunta",
                "name": {"fi": "K", "sv": "K", "en": "K"},
                "scope": {"domains": ["kunta.test"], "networks": ["192.0.2.0/24"]},
                "discovery": {"auto_accept": [{"networks": ["10.0.0.0/8"]}]},
            }
        )


def test_the_word_list_has_the_finnish_municipal_labels_and_no_duplicates():
    labels = word_list()
    assert len(labels) == len(set(labels))
    for label in ("www", "autodiscover", "vpn", "asiointi", "ajanvaraus", "kirjasto", "varaamo",
                  "rekry", "palaute", "sso", "extranet", "intra", "remote", "mail"):  # fmt: skip
        assert label in labels
