"""event until: a decision's end on its event, so past states can be replayed

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("finding_event") as batch:
        batch.add_column(sa.Column("until", sa.DateTime(timezone=True), nullable=True))
    # The latest decision of each finding: its end is on the finding.
    op.execute(
        "UPDATE finding_event SET until = (SELECT f.decision_until FROM finding f"
        " WHERE f.id = finding_event.finding_id AND f.decided_at = finding_event.at)"
        " WHERE kind IN ('accepted', 'false_positive')"
    )


def downgrade() -> None:
    with op.batch_alter_table("finding_event") as batch:
        batch.drop_column("until")
