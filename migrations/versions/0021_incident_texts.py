"""The templates and values of an incident's title, lines and fix, to show them in each reader's language;
NULL for the incidents stored before, which keep their English.

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("alert_incident", sa.Column("texts", sa.JSON(), nullable=True))
    op.add_column("alert_incident_domain", sa.Column("line_texts", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("alert_incident_domain") as batch:
        batch.drop_column("line_texts")
    with op.batch_alter_table("alert_incident") as batch:
        batch.drop_column("texts")
