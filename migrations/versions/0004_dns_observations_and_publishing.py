"""DNS check observations (per domain and per MX host) and per-domain DNS publishing settings.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "dns_setting",
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("publish_mode", sa.String(length=16), nullable=False),
        sa.Column("update_server", sa.String(length=255), nullable=True),
        sa.Column("update_zone", sa.String(length=253), nullable=True),
        sa.Column("tsig_key", sa.String(length=253), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domain.id"], name=op.f("fk_dns_setting_domain_id_domain"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("domain_id", name=op.f("pk_dns_setting")),
    )
    op.create_table(
        "dns_observation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("policy_id", sa.String(length=32), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domain.id"], name=op.f("fk_dns_observation_domain_id_domain"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dns_observation")),
    )
    op.create_index(op.f("ix_dns_observation_domain_id"), "dns_observation", ["domain_id"])
    op.create_table(
        "mx_observation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("observation_id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("preference", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=45), nullable=True),
        sa.Column("tlsa_name", sa.String(length=253), nullable=False),
        sa.Column("tlsa_state", sa.String(length=16), nullable=False),
        sa.Column("tlsa_records", sa.JSON(), nullable=False),
        sa.Column("tlsa_match", sa.Text(), nullable=True),
        sa.Column("starttls", sa.Boolean(), nullable=False),
        sa.Column("tls_version", sa.String(length=16), nullable=True),
        sa.Column("probe_error", sa.Text(), nullable=True),
        sa.Column("certificate_sha256", sa.String(length=64), nullable=True),
        sa.Column("spki_sha256", sa.String(length=64), nullable=True),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("covers_host", sa.Boolean(), nullable=True),
        sa.Column("webpki_error", sa.Text(), nullable=True),
        sa.Column("chain_pem", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["observation_id"], ["dns_observation.id"], name=op.f("fk_mx_observation_observation_id_dns_observation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mx_observation")),
    )
    op.create_index(op.f("ix_mx_observation_observation_id"), "mx_observation", ["observation_id"])


def downgrade():
    op.drop_index(op.f("ix_mx_observation_observation_id"), table_name="mx_observation")
    op.drop_table("mx_observation")
    op.drop_index(op.f("ix_dns_observation_domain_id"), table_name="dns_observation")
    op.drop_table("dns_observation")
    op.drop_table("dns_setting")
