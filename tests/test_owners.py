"""Who fixes what: asset over organisation prefix over the check's default; partners named."""

from __future__ import annotations

import pytest

from riskiturva.checks import OwnerRole, load_registry
from riskiturva.config import Config
from riskiturva.owners import Responsible, responsible_for

REGISTRY = load_registry()


def _config(minimal_config: Config, **organisation) -> Config:
    data = minimal_config.model_dump(mode="json", exclude={"source"})
    data["organisations"][0].update(organisation)
    data["partners"] = [{"slug": "seutu", "name": "Seutu-ICT Oy", "organisations": ["hyvala"]}]
    return Config.model_validate(data)


def test_the_registry_default_applies_when_the_organisation_says_nothing(minimal_config):
    config = _config(minimal_config)
    hyvala = config.organisation("hyvala")
    web = responsible_for(REGISTRY["web.hsts.missing"], hyvala, config.partner_of("hyvala"))
    assert web == Responsible(OwnerRole.SERVICE_PROVIDER, None)
    rdp = REGISTRY["services.exposed.rdp"]
    assert responsible_for(rdp, hyvala, None) == Responsible(OwnerRole.OWN_IT, None)


def test_the_longest_prefix_wins_and_the_asset_wins_over_all(minimal_config):
    config = _config(
        minimal_config,
        owners={
            "*": "partner",
            "email": {"role": "service_provider", "name": "Postitalo Oy"},
            "email.dmarc": "own_it",
        },
        assets=[
            {"kind": "ip", "value": "127.60.1.10", "owner": {"role": "own_it", "name": "ICT"}},
            {"kind": "ip", "value": "127.60.1.11"},
        ],
    )
    hyvala, partner = config.organisation("hyvala"), config.partner_of("hyvala")

    def who(check_id, asset=None):
        return responsible_for(REGISTRY[check_id], hyvala, partner, asset)

    assert who("email.dmarc.missing") == Responsible(OwnerRole.OWN_IT, None)
    assert who("email.spf.missing") == Responsible(OwnerRole.SERVICE_PROVIDER, "Postitalo Oy")
    assert who("tls.protocol.tls1_0") == Responsible(OwnerRole.PARTNER, "Seutu-ICT Oy")
    assert who("services.exposed.rdp", "127.60.1.10") == Responsible(OwnerRole.OWN_IT, "ICT")
    assert who("services.exposed.rdp", "127.60.1.11").role is OwnerRole.PARTNER


@pytest.mark.parametrize(
    ("owners", "message"),
    [
        ({"emial": "own_it"}, "no check id is or starts with 'emial'"),
        ({"email.dm": "own_it"}, "no check id is or starts with 'email.dm'"),
        ({"web": "landlord"}, "Input should be 'own_it', 'service_provider' or 'partner'"),
    ],
)
def test_owner_typos_are_refused(minimal_config, owners, message):
    with pytest.raises(ValueError, match=message):
        _config(minimal_config, owners=owners)


def test_the_partner_role_needs_a_partner(minimal_config):
    data = minimal_config.model_dump(mode="json", exclude={"source"})
    data["organisations"][1]["owners"] = {"*": "partner"}
    with pytest.raises(ValueError, match="role partner, but no partner runs this organisation"):
        Config.model_validate(data)
