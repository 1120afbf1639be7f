"""Copies of a report: one whose key is stored but whose content differs is kept, not dropped.

A report is known by (organization-name, report-id) and its date range; each copy of it has a
number (the first is 1), a standing (counted, held, set-aside) and, once compared, a fingerprint.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("report") as batch:
        batch.add_column(sa.Column("copy_number", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("standing", sa.String(length=16), server_default="counted", nullable=False))
        batch.add_column(sa.Column("fingerprint", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("chosen_by", sa.Text(), nullable=True))
        batch.drop_constraint("uq_report_organization_name_report_id", type_="unique")
        batch.create_unique_constraint("uq_report_copy", [
            "organization_name", "report_id", "start_datetime", "end_datetime", "copy_number"])


def downgrade():
    # The key is unique again: of each report, the copy that counts is kept (the first, if several do).
    op.execute("DELETE FROM report WHERE standing <> 'counted'")
    op.execute("DELETE FROM report WHERE id NOT IN (SELECT min(id) FROM report GROUP BY organization_name, report_id)")
    with op.batch_alter_table("report") as batch:
        batch.drop_constraint("uq_report_copy", type_="unique")
        batch.create_unique_constraint("uq_report_organization_name_report_id", ["organization_name", "report_id"])
        batch.drop_column("chosen_by")
        batch.drop_column("fingerprint")
        batch.drop_column("standing")
        batch.drop_column("copy_number")
