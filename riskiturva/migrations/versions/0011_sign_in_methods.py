"""dashboard accounts signed in through an OpenID Connect provider; TOTP second factors

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dashboard_user") as batch:
        batch.add_column(sa.Column("oidc_issuer", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("oidc_subject", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        batch.create_unique_constraint(
            "uq_dashboard_user_oidc_identity", ["oidc_issuer", "oidc_subject"]
        )


def downgrade() -> None:
    with op.batch_alter_table("dashboard_user") as batch:
        batch.drop_constraint("uq_dashboard_user_oidc_identity", type_="unique")
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_secret")
        batch.drop_column("oidc_subject")
        batch.drop_column("oidc_issuer")
