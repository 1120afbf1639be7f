"""TLSA records published for MX hosts and renewed certificates held back until DNS has them.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "tlsa_publication",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("ttl", sa.Integer(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("secure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_presented_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tlsa_publication")),
    )
    op.create_index(op.f("ix_tlsa_publication_host"), "tlsa_publication", ["host"])
    op.create_table(
        "staged_certificate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("chain_pem", sa.Text(), nullable=False),
        sa.Column("chain_path", sa.Text(), nullable=False),
        sa.Column("key_path", sa.Text(), nullable=False),
        sa.Column("staged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staged_certificate")),
    )
    op.create_index(op.f("ix_staged_certificate_host"), "staged_certificate", ["host"])


def downgrade():
    op.drop_index(op.f("ix_staged_certificate_host"), table_name="staged_certificate")
    op.drop_table("staged_certificate")
    op.drop_index(op.f("ix_tlsa_publication_host"), table_name="tlsa_publication")
    op.drop_table("tlsa_publication")
