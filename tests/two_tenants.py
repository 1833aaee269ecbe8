"""Two municipalities in one store, for the tests of who sees what (the dashboard's and the
API's): Hyvälä and Rapala with findings, a decision of Rapala's, a run with errors on
both, discovery proposals, a sighting outside Rapala's scope, five accounts and an API
token of Rapala's staff."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from riskiturva import api_tokens, auth
from riskiturva.models import (
    Asset,
    AssetEvidence,
    ChangeEvent,
    Finding,
    FindingStatus,
    ScanError,
    ScanRun,
    ScopeSighting,
    SubjectState,
)
from riskiturva.models_auth import ApiToken
from riskiturva.store import ObservedFinding, decide, reconcile, sync_config
from tests.conftest import T0

PASSWORD = "correct horse battery"
NOW = T0 + dt.timedelta(days=40)
RAPALA_MARKERS = ("rapala", "Rapala", "127.60.2.", "salainen")


def _observed(check_id: str, subject: str, category: str, severity: str, **evidence: Any):
    return ObservedFinding(
        check_id=check_id,
        subject=subject,
        target=subject,
        asset=subject.split(":")[0],
        category=category,
        severity=severity,
        evidence=evidence,
        reproduce=f"nmap -Pn -p 3389 {subject.split(':')[0]}",
    )


def seed(sessions, config) -> dict[str, int]:
    """Both municipalities with findings, a run with errors, subject states and users."""
    with sessions.begin() as session:
        orgs = sync_config(session, config)
        run = ScanRun(
            collector="services",
            organisations=["hyvala", "rapala"],
            status="partial",
            started_at=T0,
            finished_at=T0 + dt.timedelta(minutes=1),
            counts={"targets": 3},
        )
        session.add(run)
        session.flush()
        reconcile(
            session,
            organisation=orgs["hyvala"],
            collector="services",
            run_id=run.id,
            observed=[
                _observed(
                    "services.exposed.rdp",
                    "127.60.1.10:3389/tcp",
                    "services",
                    "high",
                    product="Microsoft Terminal Services",
                    port=3389,
                )
            ],
            scanned_ok={"127.60.1.10:3389/tcp"},
            now=T0,
        )
        reconcile(
            session,
            organisation=orgs["rapala"],
            collector="services",
            run_id=run.id,
            observed=[
                _observed(
                    "services.exposed.rdp",
                    "127.60.2.10:3389/tcp",
                    "services",
                    "high",
                    product="<script>alert('salainen')</script>",
                ),
                _observed("dns.axfr.open", "127.60.2.10:53/tcp", "dns", "high"),
            ],
            scanned_ok={"127.60.2.10:3389/tcp"},
            now=T0,
        )
        session.flush()
        # Rapala's own decision: a forger must not revoke it, nor read its reason.
        axfr = session.scalar(select(Finding).where(Finding.subject == "127.60.2.10:53/tcp"))
        decide(
            session,
            finding_id=axfr.id,
            visible=["rapala"],
            decision=FindingStatus.ACCEPTED,
            actor="rapala-it",
            reason="salainen siirto ensi kuussa",
            until=NOW + dt.timedelta(days=10),
            now=T0,
        )
        for slug, ip in (("hyvala", "127.60.1.11"), ("rapala", "127.60.2.10")):
            session.add(
                ScanError(
                    run_id=run.id,
                    organisation_id=orgs[slug].id,
                    subject=ip,
                    asset=ip,
                    kind="timeout",
                    message=f"{slug} timed out" + (" (salainen)" if slug == "rapala" else ""),
                )
            )
            session.add(
                SubjectState(
                    organisation_id=orgs[slug].id,
                    collector="services",
                    subject=ip,
                    asset=ip,
                    last_status="ok",
                    last_scanned_at=T0,
                    last_success_at=T0,
                    last_run_id=run.id,
                )
            )
        for slug, name in (("hyvala", "uusi.hyvala.test"), ("rapala", "salainen.rapala.test")):
            propose(session, orgs[slug].id, name, run_id=run.id)
        session.add(
            ScopeSighting(
                organisation_id=orgs["rapala"].id,
                value="salainen-toimittaja.test",
                kind="name",
                source="cname",
                via="CNAME of vanha.rapala.test",
                first_seen=T0,
                last_seen=T0,
            )
        )
        for username, role, org in (
            ("hyvala-staff", auth.Role.ORG_STAFF, ["hyvala"]),
            ("hyvala-boss", auth.Role.VIEWER, ["hyvala"]),
            ("rapala-staff", auth.Role.ORG_STAFF, ["rapala"]),
            ("partner", auth.Role.PARTNER_ADMIN, []),
            ("hyvala-partner", auth.Role.PARTNER_ADMIN, ["hyvala"]),
        ):
            auth.create_user(
                session, username=username, password=PASSWORD, role=role, organisations=org, now=T0
            )
        # Rapala's own API token: a forger must neither see it listed nor revoke it.
        api_tokens.create_token(
            session, "rapala-staff", name="Rapalan Jira", now=T0, actor="rapala-staff"
        )
        rows = session.execute(select(Finding.subject, Finding.id)).all()
    return {subject: finding_id for subject, finding_id in rows}


def propose(session, organisation_id: int, name: str, *, run_id: int) -> Asset:
    """A discovered asset waiting for review, seen in its zone's NSEC chain."""
    asset = Asset(
        organisation_id=organisation_id,
        kind="host",
        value=name,
        criticality="medium",
        tags=[],
        dkim_selectors=[],
        origin="discovered",
        state="proposed",
        first_seen=T0,
        last_seen=T0,
        gone_runs=0,
    )
    zone = name.split(".", 1)[1]
    asset.evidence.append(
        AssetEvidence(
            source="nsec",
            via=f"NSEC chain of {zone}",
            detail={"next": f"www.{zone}"},
            first_seen=T0,
            last_seen=T0,
            last_run_id=run_id,
        )
    )
    session.add(asset)
    session.flush()
    session.add(
        ChangeEvent(
            organisation_id=organisation_id,
            kind="asset.proposed",
            subject=name,
            asset_id=asset.id,
            run_id=run_id,
            at=NOW - dt.timedelta(days=1),
            detail={"kind": "host", "sources": ["nsec"]},
        )
    )
    return asset


def rapala_token_id(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(ApiToken.id).where(ApiToken.name == "Rapalan Jira"))


def asset_id(sessions, value: str) -> int:
    with sessions() as session:
        return session.scalar(select(Asset.id).where(Asset.value == value))


class Clock:
    """A clock the test moves: `clock.now += dt.timedelta(minutes=61)`."""

    def __init__(self, now: dt.datetime = NOW):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


# Who calls: (user, scope, organisations the token is narrowed to)
HOLDERS = {
    "staff": ("hyvala-staff", "decide", ()),
    "staff-read": ("hyvala-staff", "read", ()),
    "viewer": ("hyvala-boss", "read", ()),
    "partner-of-hyvala": ("hyvala-partner", "read", ()),
    "partner-narrowed": ("partner", "read", ("hyvala",)),
    "partner": ("partner", "read", ()),
}


def make_tokens(sessions, *only: str, now: dt.datetime = NOW) -> dict[str, str]:
    """A token for each of `HOLDERS` (or those named), by key: the secrets."""
    wanted = {k: v for k, v in HOLDERS.items() if not only or k in only}
    with sessions.begin() as session:
        return {
            key: api_tokens.create_token(
                session,
                user,
                name=f"test {key}",
                scope=scope,
                organisations=orgs,
                now=now,
                actor="test",
            ).secret
            for key, (user, scope, orgs) in wanted.items()
        }


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
