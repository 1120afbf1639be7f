"""The checks of a domain by time: findings read what checks saw on its MX hosts over a range of days.

It replaces the index on the domain alone, which it covers.

Revision ID: 0015
Revises: 0013
"""

from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(op.f("ix_dns_observation_domain_id_observed_at"), "dns_observation", ["domain_id", "observed_at"])
    op.drop_index(op.f("ix_dns_observation_domain_id"), table_name="dns_observation")


def downgrade():
    op.create_index(op.f("ix_dns_observation_domain_id"), "dns_observation", ["domain_id"])
    op.drop_index(op.f("ix_dns_observation_domain_id_observed_at"), table_name="dns_observation")
