"""alerts: rules, outbox, delivery attempts, scan failure streaks

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 21:57:42.425585
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("destination", sa.String(length=300), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_host", sa.String(length=255), nullable=True),
        sa.Column("claimed_pid", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("alert_message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_message_destination"), ["destination"], unique=False
        )
        batch_op.create_index(
            "ix_alert_message_status_next", ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "alert_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["alert_message.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alert_attempt", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_attempt_message_id"), ["message_id"], unique=False
        )

    op.create_table(
        "alert_scan_streak",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("collector", sa.String(length=50), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failed_run_id", sa.Integer(), nullable=True),
        sa.Column("last_run_id", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organisation_id", "collector"),
    )
    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("dedupe_key", sa.String(length=300), nullable=False),
        sa.Column("rule", sa.String(length=30), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("finding_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("urgency", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("check_id", sa.String(length=100), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("throttle_key", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("last_repeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["finding_id"],
            ["finding.id"],
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["scan_run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
        sa.UniqueConstraint("uid"),
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_finding_id"), ["finding_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_alert_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_alert_rule"), ["rule"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_throttle_key"), ["throttle_key"], unique=False)

    op.create_table(
        "alert_notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("destination", sa.String(length=300), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("urgency", sa.String(length=10), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alert.id"],
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["alert_message.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_id", "destination"),
    )
    with op.batch_alter_table("alert_notification", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_notification_alert_id"), ["alert_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_alert_notification_message_id"), ["message_id"], unique=False
        )
        batch_op.create_index(
            "ix_alert_notification_status_due", ["status", "due_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_notification", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_notification_status_due")
        batch_op.drop_index(batch_op.f("ix_alert_notification_message_id"))
        batch_op.drop_index(batch_op.f("ix_alert_notification_alert_id"))

    op.drop_table("alert_notification")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_throttle_key"))
        batch_op.drop_index(batch_op.f("ix_alert_rule"))
        batch_op.drop_index(batch_op.f("ix_alert_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_alert_finding_id"))
        batch_op.drop_index(batch_op.f("ix_alert_created_at"))

    op.drop_table("alert")
    op.drop_table("alert_scan_streak")
    with op.batch_alter_table("alert_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_attempt_message_id"))

    op.drop_table("alert_attempt")
    with op.batch_alter_table("alert_message", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_message_status_next")
        batch_op.drop_index(batch_op.f("ix_alert_message_destination"))

    op.drop_table("alert_message")
