"""What the review reads by hosted domain: the domains each report counts for, and daily rollups (summary
totals per organisation; failures per result type, MX, organisation and sending IP; when each result type
first came), filled from the stored reports by each block's link.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

CEILING = 2**44  # reports.models.ROLLUP_CEILING


def _domain_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["domain_id"], ["domain.id"], name=op.f(f"fk_{table}_domain_id_domain"),
                                   ondelete="CASCADE")


def upgrade():
    op.create_table(
        "report_domain",
        sa.Column("report_row_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["report_row_id"], ["report.id"], name=op.f("fk_report_domain_report_row_id_report"),
                                ondelete="CASCADE"),
        _domain_fk("report_domain"),
        sa.PrimaryKeyConstraint("report_row_id", "domain_id", name=op.f("pk_report_domain")),
    )
    op.create_index("ix_report_domain_domain_id_day", "report_domain", ["domain_id", "day"])
    op.create_table(
        "report_daily_total",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("policy_type", sa.String(length=16), nullable=False),
        sa.Column("organization_name", sa.String(length=256), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("successful_session_count", sa.BigInteger(), nullable=False),
        sa.Column("failed_session_count", sa.BigInteger(), nullable=False),
        _domain_fk("report_daily_total"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_daily_total")),
        sa.UniqueConstraint("domain_id", "day", "policy_type", "organization_name", "shard",
                            name="uq_report_daily_total_key"),
    )
    op.create_table(
        "report_daily_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("policy_type", sa.String(length=16), nullable=False),
        sa.Column("result_type", sa.String(length=64), nullable=False),
        sa.Column("mx_host", sa.String(length=253), nullable=False),
        sa.Column("organization_name", sa.String(length=256), nullable=False),
        sa.Column("sending_ip", sa.String(length=45), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("failed_session_count", sa.BigInteger(), nullable=False),
        _domain_fk("report_daily_failure"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_daily_failure")),
        sa.UniqueConstraint(
            "domain_id", "day", "policy_type", "result_type", "mx_host", "organization_name", "sending_ip", "shard",
            name="uq_report_daily_failure_key",
        ),
    )
    op.create_table(
        "report_result_type_seen",
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("result_type", sa.String(length=64), nullable=False),
        sa.Column("first_received_at", sa.DateTime(timezone=True), nullable=False),
        _domain_fk("report_result_type_seen"),
        sa.PrimaryKeyConstraint("domain_id", "result_type", name=op.f("pk_report_result_type_seen")),
    )
    op.create_index(op.f("ix_report_result_type_seen_first_received_at"), "report_result_type_seen",
                    ["first_received_at"])
    _backfill()


def _backfill():
    """The rollups of the reports stored so far, as storage.review_rows makes them for each new one
    (in shard 0: a shard only spreads the row locks of concurrent reports)."""
    postgresql = op.get_bind().dialect.name == "postgresql"
    day = "(r.start_datetime AT TIME ZONE 'UTC')::date" if postgresql else "date(r.start_datetime)"
    least = "least" if postgresql else "min"
    op.execute(f"""
        INSERT INTO report_domain (report_row_id, domain_id, day)
        SELECT DISTINCT p.report_row_id, p.domain_id, {day}
        FROM report_policy p JOIN report r ON r.id = p.report_row_id
        WHERE p.domain_id IS NOT NULL
    """)
    op.execute(f"""
        INSERT INTO report_daily_total (domain_id, day, policy_type, organization_name, shard,
                                        successful_session_count, failed_session_count)
        SELECT p.domain_id, {day}, p.policy_type, r.organization_name, 0,
               {least}(sum(p.successful_session_count), {CEILING}), {least}(sum(p.failed_session_count), {CEILING})
        FROM report_policy p JOIN report r ON r.id = p.report_row_id
        WHERE p.domain_id IS NOT NULL
        GROUP BY 1, 2, 3, 4
    """)
    op.execute(f"""
        INSERT INTO report_daily_failure (domain_id, day, policy_type, result_type, mx_host, organization_name,
                                          sending_ip, shard, failed_session_count)
        SELECT p.domain_id, {day}, p.policy_type, d.result_type, rtrim(coalesce(d.receiving_mx_hostname, ''), '.'),
               r.organization_name, coalesce(d.sending_mta_ip, ''), 0,
               {least}(sum(d.failed_session_count), {CEILING})
        FROM failure_detail d JOIN report_policy p ON p.id = d.report_policy_id JOIN report r ON r.id = p.report_row_id
        WHERE p.domain_id IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5, 6, 7
    """)
    op.execute("""
        INSERT INTO report_result_type_seen (domain_id, result_type, first_received_at)
        SELECT p.domain_id, d.result_type, min(r.received_at)
        FROM failure_detail d JOIN report_policy p ON p.id = d.report_policy_id JOIN report r ON r.id = p.report_row_id
        WHERE p.domain_id IS NOT NULL
        GROUP BY p.domain_id, d.result_type
    """)


def downgrade():
    op.drop_index(op.f("ix_report_result_type_seen_first_received_at"), table_name="report_result_type_seen")
    op.drop_table("report_result_type_seen")
    op.drop_table("report_daily_failure")
    op.drop_table("report_daily_total")
    op.drop_index("ix_report_domain_domain_id_day", table_name="report_domain")
    op.drop_table("report_domain")
