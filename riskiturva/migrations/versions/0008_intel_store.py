"""vulnerability-intelligence store (KEV, NVD, EPSS, endoflife.date)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 22:02:44.898661
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "intel_cpe_match",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cve_id", sa.String(length=30), nullable=False),
        sa.Column("vendor", sa.String(length=120), nullable=False),
        sa.Column("product", sa.String(length=200), nullable=False),
        sa.Column("criteria", sa.Text(), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("start_including", sa.String(length=100), nullable=True),
        sa.Column("start_excluding", sa.String(length=100), nullable=True),
        sa.Column("end_including", sa.String(length=100), nullable=True),
        sa.Column("end_excluding", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("intel_cpe_match", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_intel_cpe_match_cve_id"), ["cve_id"], unique=False)
        batch_op.create_index("ix_intel_cpe_match_product", ["vendor", "product"], unique=False)

    op.create_table(
        "intel_cve",
        sa.Column("cve_id", sa.String(length=30), nullable=False),
        sa.Column("published", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("cvss_version", sa.String(length=5), nullable=True),
        sa.Column("cvss_score", sa.Double(), nullable=True),
        sa.Column("cvss_severity", sa.String(length=10), nullable=True),
        sa.Column("cvss_vector", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("cve_id"),
    )
    op.create_table(
        "intel_eol_product",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cpes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "intel_eol_release",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("release_date", sa.Date(), nullable=False),
        sa.Column("is_eol", sa.Boolean(), nullable=False),
        sa.Column("eol_from", sa.Date(), nullable=True),
        sa.Column("is_maintained", sa.Boolean(), nullable=False),
        sa.Column("eoes_from", sa.Date(), nullable=True),
        sa.Column("is_eoes", sa.Boolean(), nullable=True),
        sa.Column("latest", sa.String(length=100), nullable=True),
        sa.Column("is_lts", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("intel_eol_release", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_intel_eol_release_product"), ["product"], unique=False)

    op.create_table(
        "intel_epss",
        sa.Column("cve_id", sa.String(length=30), nullable=False),
        sa.Column("epss", sa.Double(), nullable=False),
        sa.Column("percentile", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("cve_id"),
    )
    op.create_table(
        "intel_kev",
        sa.Column("cve_id", sa.String(length=30), nullable=False),
        sa.Column("vendor_project", sa.String(length=200), nullable=False),
        sa.Column("product", sa.String(length=200), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("date_added", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("ransomware", sa.Boolean(), nullable=False),
        sa.Column("required_action", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("cve_id"),
    )
    op.create_table(
        "intel_source",
        sa.Column("name", sa.String(length=10), nullable=False),
        sa.Column("data_as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("intel_source")
    op.drop_table("intel_kev")
    op.drop_table("intel_epss")
    with op.batch_alter_table("intel_eol_release", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intel_eol_release_product"))

    op.drop_table("intel_eol_release")
    op.drop_table("intel_eol_product")
    op.drop_table("intel_cve")
    with op.batch_alter_table("intel_cpe_match", schema=None) as batch_op:
        batch_op.drop_index("ix_intel_cpe_match_product")
        batch_op.drop_index(batch_op.f("ix_intel_cpe_match_cve_id"))

    op.drop_table("intel_cpe_match")
