"""TLS-RPT reports, policy blocks, failure details, daily rollups and per-tenant rua tokens.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_name", sa.String(length=256), nullable=False),
        sa.Column("report_id", sa.String(length=256), nullable=False),
        sa.Column("contact_info", sa.Text(), nullable=True),
        sa.Column("start_datetime", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_datetime", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_detail", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raw_gzip", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("dkim_result", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report")),
        sa.UniqueConstraint("organization_name", "report_id", name=op.f("uq_report_organization_name_report_id")),
    )
    op.create_index(op.f("ix_report_end_datetime"), "report", ["end_datetime"])
    op.create_table(
        "report_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_row_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("policy_type", sa.String(length=16), nullable=False),
        sa.Column("policy_domain", sa.String(length=253), nullable=True),
        sa.Column("policy_strings", sa.JSON(), nullable=False),
        sa.Column("mx_hosts", sa.JSON(), nullable=False),
        sa.Column("successful_session_count", sa.BigInteger(), nullable=False),
        sa.Column("failed_session_count", sa.BigInteger(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=True),
        sa.Column("policy_version_id", sa.Integer(), nullable=True),
        sa.Column("policy_match", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_row_id"], ["report.id"], name=op.f("fk_report_policy_report_row_id_report"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domain.id"], name=op.f("fk_report_policy_domain_id_domain"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["policy_version_id"], ["policy_version.id"],
            name=op.f("fk_report_policy_policy_version_id_policy_version"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_policy")),
    )
    op.create_index(op.f("ix_report_policy_report_row_id"), "report_policy", ["report_row_id"])
    op.create_index(op.f("ix_report_policy_policy_domain"), "report_policy", ["policy_domain"])
    op.create_index(op.f("ix_report_policy_domain_id"), "report_policy", ["domain_id"])
    op.create_index(op.f("ix_report_policy_policy_version_id"), "report_policy", ["policy_version_id"])
    op.create_table(
        "failure_detail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_policy_id", sa.Integer(), nullable=False),
        sa.Column("result_type", sa.String(length=64), nullable=False),
        sa.Column("failed_session_count", sa.BigInteger(), nullable=False),
        sa.Column("sending_mta_ip", sa.String(length=45), nullable=True),
        sa.Column("receiving_ip", sa.String(length=45), nullable=True),
        sa.Column("receiving_mx_hostname", sa.String(length=253), nullable=True),
        sa.Column("receiving_mx_helo", sa.Text(), nullable=True),
        sa.Column("additional_information", sa.Text(), nullable=True),
        sa.Column("failure_reason_code", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["report_policy_id"], ["report_policy.id"],
            name=op.f("fk_failure_detail_report_policy_id_report_policy"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failure_detail")),
    )
    op.create_index(op.f("ix_failure_detail_report_policy_id"), "failure_detail", ["report_policy_id"])
    op.create_table(
        "report_daily_rollup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("policy_domain", sa.String(length=253), nullable=False),
        sa.Column("policy_type", sa.String(length=16), nullable=False),
        sa.Column("result_type", sa.String(length=64), nullable=False),
        sa.Column("mx_host", sa.String(length=253), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("session_count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_daily_rollup")),
        sa.UniqueConstraint(
            "day", "policy_domain", "policy_type", "result_type", "mx_host", "shard",
            name="uq_report_daily_rollup_key",
        ),
    )
    op.create_table(
        "report_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_token")),
        sa.UniqueConstraint("token", name=op.f("uq_report_token_token")),
    )
    op.create_table(
        "report_token_domain",
        sa.Column("report_token_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_token_id"], ["report_token.id"],
            name=op.f("fk_report_token_domain_report_token_id_report_token"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domain.id"], name=op.f("fk_report_token_domain_domain_id_domain"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("report_token_id", "domain_id", name=op.f("pk_report_token_domain")),
    )


def downgrade():
    op.drop_table("report_token_domain")
    op.drop_table("report_token")
    op.drop_table("report_daily_rollup")
    op.drop_index(op.f("ix_failure_detail_report_policy_id"), table_name="failure_detail")
    op.drop_table("failure_detail")
    op.drop_index(op.f("ix_report_policy_policy_version_id"), table_name="report_policy")
    op.drop_index(op.f("ix_report_policy_domain_id"), table_name="report_policy")
    op.drop_index(op.f("ix_report_policy_policy_domain"), table_name="report_policy")
    op.drop_index(op.f("ix_report_policy_report_row_id"), table_name="report_policy")
    op.drop_table("report_policy")
    op.drop_index(op.f("ix_report_end_datetime"), table_name="report")
    op.drop_table("report")
