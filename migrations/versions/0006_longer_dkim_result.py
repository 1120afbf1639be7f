"""Room in report.dkim_result for `pass d=` and a domain name of up to 253 characters.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("report") as batch:
        batch.alter_column("dkim_result", existing_type=sa.String(length=128), type_=sa.String(length=260),
                           existing_nullable=True)


def downgrade():
    # PostgreSQL refuses this while a longer result is stored: nothing is cut short unasked.
    with op.batch_alter_table("report") as batch:
        batch.alter_column("dkim_result", existing_type=sa.String(length=260), type_=sa.String(length=128),
                           existing_nullable=True)
