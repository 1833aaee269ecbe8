"""inventory in the database: asset origin and state, evidence, sightings outside scope,
change events

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 06:00:00

Existing assets came from the configuration: an active one stays active, one removed from
the configuration (active = false) becomes retired, with that as its reason.
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REMOVED = "removed from the configuration"


def upgrade() -> None:
    now = dt.datetime.now(dt.UTC)
    with op.batch_alter_table("asset", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dkim_selectors", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "origin", sa.String(length=20), nullable=False, server_default="configuration"
            )
        )
        batch_op.add_column(
            sa.Column("state", sa.String(length=20), nullable=False, server_default="active")
        )
        batch_op.add_column(sa.Column("owner_note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("first_seen", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("state_changed_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("state_reason", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("gone_runs", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("retirement_proposed_at", sa.DateTime(timezone=True), nullable=True)
        )
    asset = sa.table(
        "asset",
        sa.column("active", sa.Boolean()),
        sa.column("state", sa.String()),
        sa.column("state_reason", sa.Text()),
        sa.column("state_changed_at", sa.DateTime(timezone=True)),
        sa.column("state_changed_by", sa.String()),
        sa.column("dkim_selectors", sa.JSON()),
        sa.column("first_seen", sa.DateTime(timezone=True)),
        sa.column("last_seen", sa.DateTime(timezone=True)),
    )
    op.execute(asset.update().values(first_seen=now, last_seen=now, dkim_selectors=[]))
    op.execute(
        asset.update()
        .where(asset.c.active == sa.false())
        .values(
            state="retired",
            state_reason=_REMOVED,
            state_changed_at=now,
            state_changed_by="migration 0005",
        )
    )
    with op.batch_alter_table("asset", schema=None) as batch_op:
        batch_op.alter_column("dkim_selectors", existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column(
            "first_seen", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.alter_column("last_seen", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.alter_column("origin", server_default=None)
        batch_op.alter_column("state", server_default=None)
        batch_op.alter_column("gone_runs", server_default=None)
        batch_op.drop_column("active")
        batch_op.create_index("ix_asset_org_state", ["organisation_id", "state"], unique=False)

    op.create_table(
        "asset_evidence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=30), nullable=False),
        sa.Column("via", sa.String(length=500), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["asset_id"], ["asset.id"]),
        sa.ForeignKeyConstraint(["last_run_id"], ["scan_run.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("asset_id", "source", "via"),
    )
    with op.batch_alter_table("asset_evidence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_asset_evidence_asset_id"), ["asset_id"], unique=False)

    op.create_table(
        "scope_sighting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=30), nullable=False),
        sa.Column("via", sa.String(length=500), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["last_run_id"], ["scan_run.id"]),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organisation_id", "value", "source", "via"),
    )
    with op.batch_alter_table("scope_sighting", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scope_sighting_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "change_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["asset.id"]),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["run_id"], ["scan_run.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("change_event", schema=None) as batch_op:
        batch_op.create_index("ix_change_event_kind_at", ["kind", "at"], unique=False)
        batch_op.create_index("ix_change_event_org_at", ["organisation_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("change_event", schema=None) as batch_op:
        batch_op.drop_index("ix_change_event_org_at")
        batch_op.drop_index("ix_change_event_kind_at")
    op.drop_table("change_event")
    with op.batch_alter_table("scope_sighting", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scope_sighting_organisation_id"))
    op.drop_table("scope_sighting")
    with op.batch_alter_table("asset_evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_asset_evidence_asset_id"))
    op.drop_table("asset_evidence")
    # Proposals, rejected and retired assets come back as inactive rows.
    with op.batch_alter_table("asset", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.execute(sa.text("UPDATE asset SET active = (state = 'active')"))
    with op.batch_alter_table("asset", schema=None) as batch_op:
        batch_op.alter_column("active", server_default=None)
        batch_op.drop_index("ix_asset_org_state")
        for column in (
            "retirement_proposed_at",
            "gone_runs",
            "state_reason",
            "state_changed_by",
            "state_changed_at",
            "last_seen",
            "first_seen",
            "owner_note",
            "state",
            "origin",
            "dkim_selectors",
        ):
            batch_op.drop_column(column)
