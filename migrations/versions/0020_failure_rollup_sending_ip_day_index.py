"""The failure rollup rows that still name a sending IP, by day: `flask report prune` finds those older
than TLSRPT_IP_ROLLUP_RETENTION_DAYS in it, and once it has folded them into rows without the IP they
leave the index, so each run reads only what it folds rather than every domain's history.

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_report_daily_failure_day_with_ip", "report_daily_failure", ["day"],
                    postgresql_where=sa.text("sending_ip <> ''"), sqlite_where=sa.text("sending_ip <> ''"))


def downgrade():
    op.drop_index("ix_report_daily_failure_day_with_ip", table_name="report_daily_failure")
