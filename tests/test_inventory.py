"""The inventory in the store (SQLite and PostgreSQL): configuration import, decisions on
proposals, the audit trail, visibility, and the migration of an existing database."""

from __future__ import annotations

import threading

import pytest
from alembic import command
from sqlalchemy import select, text

from riskiturva import db
from riskiturva.config import load_config
from riskiturva.dberrors import write_with_retry
from riskiturva.inventory import (
    InventoryError,
    accept,
    active_assets,
    add,
    export_document,
    list_assets,
    reject,
    retire,
    update,
)
from riskiturva.models import (
    Asset,
    AssetOrigin,
    AssetState,
    ChangeEvent,
    Organisation,
)
from riskiturva.models_auth import AuditEvent
from riskiturva.store import NotVisible, make_engine, session_factory, sync_config
from tests.conftest import MINIMAL_CONFIG, T0, queued

ALL = ["hyvala", "rapala"]


def _propose(session, slug: str, value: str, kind: str = "host") -> Asset:
    org = session.scalar(select(Organisation).where(Organisation.slug == slug))
    asset = Asset(organisation_id=org.id, kind=kind, value=value, criticality="medium",
                  origin=AssetOrigin.DISCOVERED, state=AssetState.PROPOSED,
                  first_seen=T0, last_seen=T0)  # fmt: skip
    session.add(asset)
    session.flush()
    return asset


def test_sync_imports_the_configuration_idempotently(sessions, minimal_config):
    for _ in range(2):
        with sessions.begin() as session:
            sync_config(session, minimal_config, now=T0)
    with sessions() as session:
        rows = list_assets(session, ALL)
    assert [(a.organisation.slug, a.value, a.origin, a.state) for a in rows] == [
        ("hyvala", "127.60.1.10", "configuration", "active"),
        ("hyvala", "127.60.1.11", "configuration", "active"),
        ("rapala", "127.60.2.10", "configuration", "active"),
    ]


def test_an_asset_removed_from_the_configuration_is_retired_and_discovered_ones_stay(
    sessions, minimal_config
):
    with sessions.begin() as session:
        sync_config(session, minimal_config, now=T0)
        _propose(session, "hyvala", "uusi.hyvala.test")
    organisations = list(minimal_config.organisations)
    organisations[0] = organisations[0].model_copy(update={"assets": organisations[0].assets[:1]})
    smaller = minimal_config.model_copy(update={"organisations": tuple(organisations)})
    with sessions.begin() as session:
        sync_config(session, smaller, now=T0)
        states = {a.value: (a.state, a.state_reason) for a in list_assets(session, ["hyvala"])}
    assert states == {
        "127.60.1.10": ("active", None),
        "127.60.1.11": ("retired", "removed from the configuration"),
        "uusi.hyvala.test": ("proposed", None),
    }


def test_a_declaration_wins_over_an_earlier_rejection(sessions, minimal_config):
    with sessions.begin() as session:
        sync_config(session, minimal_config, now=T0)
        asset = _propose(session, "rapala", "127.60.2.99", kind="ip")
        reject(session, [asset.id], visible=ALL, actor="staff", now=T0, reason="not ours")
    organisations = list(minimal_config.organisations)
    declared = (
        *organisations[1].assets,
        organisations[1].assets[0].model_copy(update={"value": "127.60.2.99"}),
    )
    organisations[1] = organisations[1].model_copy(update={"assets": declared})
    with sessions.begin() as session:
        sync_config(
            session,
            minimal_config.model_copy(update={"organisations": tuple(organisations)}),
            now=T0,
        )
        row = session.scalar(select(Asset).where(Asset.value == "127.60.2.99"))
        assert (row.origin, row.state) == ("configuration", "active")  # fmt: skip
        assert (row.state_changed_by, row.state_reason) == (
            "configuration",
            "declared in the configuration",
        )
        untouched = session.scalar(select(Asset).where(Asset.value == "127.60.2.10"))
        assert untouched.state_changed_at is None  # declared all along: no decision to record


def test_syncs_at_the_same_moment_on_a_new_database_both_succeed(sessions, minimal_config):
    # Given several processes' first commands at once (threads, each with its own connection)
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def sync_once() -> None:
        start.wait()
        try:
            write_with_retry(
                sessions,
                lambda session: sync_config(session, minimal_config, now=T0),
                what="sync",
                budget_s=30,
            )
        except BaseException as exc:  # collected for the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=sync_once) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then each one imported the configuration, and each asset is there once
    assert failures == []
    with sessions() as session:
        rows = [(a.organisation.slug, a.value, a.state) for a in list_assets(session, ALL)]
    assert rows == [
        ("hyvala", "127.60.1.10", "active"),
        ("hyvala", "127.60.1.11", "active"),
        ("rapala", "127.60.2.10", "active"),
    ]


def test_accepting_a_proposal_makes_it_active_for_the_runner_and_is_audited(
    sessions, minimal_config
):
    with sessions.begin() as session:
        sync_config(session, minimal_config, now=T0)
        asset = _propose(session, "hyvala", "vanha.hyvala.test")
        assert "vanha.hyvala.test" not in {a.value for a in active_assets(session, "hyvala")}
        accept(session, [asset.id], visible=["hyvala"], actor="anna", now=T0,
               criticality="high", tags=["e-service"], note="the old booking system")  # fmt: skip
    with sessions() as session:
        scanned = {a.value: a for a in active_assets(session, "hyvala")}
        assert scanned["vanha.hyvala.test"].criticality == "high"
        assert scanned["vanha.hyvala.test"].tags == ("e-service",)
        [event] = session.scalars(select(ChangeEvent).where(ChangeEvent.kind == "asset.accepted"))
        [audit] = session.scalars(select(AuditEvent).where(AuditEvent.action == "asset.accepted"))
    assert (event.subject, event.actor) == ("vanha.hyvala.test", "anna")
    assert (audit.actor, audit.organisation, audit.note) == (
        "anna",
        "hyvala",
        "the old booking system",
    )


def test_a_rejected_proposal_needs_a_reason_and_stays_rejected(sessions, minimal_config):
    with sessions.begin() as session:
        sync_config(session, minimal_config, now=T0)
        asset = _propose(session, "hyvala", "testi.hyvala.test")
        with pytest.raises(InventoryError, match="reason"):
            reject(session, [asset.id], visible=ALL, actor="anna", now=T0, reason=" ")
        reject(session, [asset.id], visible=ALL, actor="anna", now=T0, reason="a test site")
        with pytest.raises(InventoryError, match="not a proposal"):
            accept(session, [asset.id], visible=ALL, actor="anna", now=T0)
        assert queued(session, ALL) == []


def test_nobody_decides_on_an_organisation_they_do_not_see(sessions, minimal_config):
    with sessions.begin() as session:
        sync_config(session, minimal_config, now=T0)
        asset = _propose(session, "rapala", "salainen.rapala.test")
        with pytest.raises(NotVisible):
            accept(session, [asset.id], visible=["hyvala"], actor="hyvala-staff", now=T0)
        assert queued(session, ["hyvala"]) == []
        assert [a.value for a in queued(session, ["rapala"])] == ["salainen.rapala.test"]


def test_configuration_assets_are_retired_in_the_configuration_only(sessions, minimal_config):
    with sessions.begin() as session:
        sync_config(session, minimal_config, now=T0)
        declared = session.scalar(select(Asset).where(Asset.value == "127.60.1.10"))
        with pytest.raises(InventoryError, match="declared in the configuration"):
            retire(session, [declared.id], visible=ALL, actor="anna", now=T0, reason="gone")
        with pytest.raises(InventoryError, match="come from the configuration"):
            update(session, declared.id, visible=ALL, actor="anna", now=T0, criticality="low")
        update(session, declared.id, visible=ALL, actor="anna", now=T0, owner_note="Tietohallinto")
        assert declared.owner_note == "Tietohallinto"


def test_a_retirement_proposal_is_accepted_or_rejected_like_any_proposal(sessions, minimal_config):
    with sessions.begin() as session:
        sync_config(session, minimal_config, now=T0)
        kept, gone = (_propose(session, "hyvala", f"{n}.hyvala.test") for n in ("a", "b"))
        accept(session, [kept.id, gone.id], visible=ALL, actor="anna", now=T0)
        for asset in (kept, gone):
            asset.gone_runs, asset.retirement_proposed_at = 3, T0
        assert {a.value for a in queued(session, ALL)} == {"a.hyvala.test", "b.hyvala.test"}
        reject(session, [kept.id], visible=ALL, actor="anna", now=T0, reason="moved, still ours")
        accept(session, [gone.id], visible=ALL, actor="anna", now=T0)
        assert (kept.state, kept.gone_runs, kept.retirement_proposed_at) == ("active", 0, None)
        assert gone.state == "retired"


def test_an_asset_added_by_hand_must_lie_in_the_scope(sessions, minimal_config):
    with sessions.begin() as session:
        sync_config(session, minimal_config, now=T0)
        with pytest.raises(InventoryError, match="outside the declared scope"):
            add(session, minimal_config, organisation="hyvala", kind="host",
                value="www.muualla.test", visible=ALL, actor="anna", now=T0)  # fmt: skip
        asset = add(session, minimal_config, organisation="hyvala", kind="host",
                    value="Ajanvaraus.Hyvala.Test", visible=ALL, actor="anna", now=T0)  # fmt: skip
    assert (asset.value, asset.origin, asset.state) == ("ajanvaraus.hyvala.test", "added", "active")


def test_export_writes_the_active_inventory_back_and_reimports_to_the_same(tmp_path, sessions):
    path = tmp_path / "riskiturva.toml"
    path.write_text("# our estate\n" + MINIMAL_CONFIG, encoding="utf-8")
    config = load_config(path)
    with sessions.begin() as session:
        sync_config(session, config, now=T0)
        accept(session, [_propose(session, "rapala", "uusi.rapala.test").id], visible=ALL,
               actor="anna", now=T0, tags=["website"])  # fmt: skip
        _propose(session, "rapala", "ehdotus.rapala.test")  # still a proposal: not exported
        inventory: dict[str, list[Asset]] = {}
        for asset in list_assets(session, ALL, states=["active"]):
            inventory.setdefault(asset.organisation.slug, []).append(asset)
        exported = export_document(config, inventory)
    assert exported.startswith("# our estate")
    again = tmp_path / "exported.toml"
    again.write_text(exported, encoding="utf-8")
    reloaded = load_config(again)
    values = {o.slug: sorted(a.value for a in o.assets) for o in reloaded.organisations}
    assert values == {
        "hyvala": ["127.60.1.10", "127.60.1.11"],
        "rapala": ["127.60.2.10", "uusi.rapala.test"],
    }
    with sessions.begin() as session:
        sync_config(session, reloaded, now=T0)
        rows = {a.value: (a.origin, a.state) for a in list_assets(session, ["rapala"])}
    assert rows["uusi.rapala.test"] == ("configuration", "active")
    assert rows["ehdotus.rapala.test"] == ("discovered", "proposed")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_keeps_the_assets_of_an_existing_database(backend, tmp_path, request):
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    else:
        engine = make_engine(request.getfixturevalue("postgres_url"))
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.upgrade(engine, "0006")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO organisation (id, slug, name_fi, name_sv, name_en) "
            "VALUES (1, 'hyvala', 'H', 'H', 'H')"
        ))  # fmt: skip
        connection.execute(text(
            "INSERT INTO asset (organisation_id, kind, value, criticality, tags, active) VALUES "
            "(1, 'host', 'www.hyvala.test', 'high', '[\"website\"]', true), "
            "(1, 'host', 'vanha.hyvala.test', 'low', '[]', false)"
        ))  # fmt: skip
    db.upgrade(engine)
    sessions = session_factory(engine)
    with sessions() as session:
        rows = {a.value: a for a in session.scalars(select(Asset))}
    assert (rows["www.hyvala.test"].state, rows["www.hyvala.test"].origin) == (
        "active",
        "configuration",
    )
    assert rows["www.hyvala.test"].tags == ["website"]
    assert rows["vanha.hyvala.test"].state == "retired"
    assert rows["vanha.hyvala.test"].state_reason == "removed from the configuration"
    config = db.alembic_config(engine)
    with engine.begin() as connection:  # and back: the flag returns
        config.attributes["connection"] = connection
        command.downgrade(config, "0006")
    with engine.connect() as connection:
        flags = dict(connection.execute(text("SELECT value, active FROM asset")).all())
    assert {k: bool(v) for k, v in flags.items()} == {
        "www.hyvala.test": True,
        "vanha.hyvala.test": False,
    }
    engine.dispose()
