"""An index on the MX host of MX observations: the TLSA rollover asks for one host's history.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(op.f("ix_mx_observation_host"), "mx_observation", ["host"])


def downgrade():
    op.drop_index(op.f("ix_mx_observation_host"), table_name="mx_observation")
