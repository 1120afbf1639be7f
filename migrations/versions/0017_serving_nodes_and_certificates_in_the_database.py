"""Serving nodes: a serving revision raised by triggers, the nodes' state, certificates and ACME in the database.

Triggers raise `serving_state.revision` (and on PostgreSQL notify channel `serving_changed`)
on every change of what nodes serve: domains, policy versions, certificate keys and chains,
ACME challenges. A later migration that rebuilds one of those tables on SQLite (a batch
operation) drops its triggers: create them again there (tests/nodes check they fire).

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# table: the changes that alter what a node serves (the certificate row also records attempts).
WATCHED = {
    "domain": ("DELETE",),
    "policy_version": ("INSERT", "DELETE"),
    "certificate": ("INSERT", "UPDATE OF fullchain_pem, key_sealed", "DELETE"),
    "acme_challenge": ("INSERT", "DELETE"),
}

POSTGRESQL_FUNCTION = """
CREATE FUNCTION serving_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    raised bigint;
BEGIN
    UPDATE serving_state SET revision = revision + 1 WHERE id = 1 RETURNING revision INTO raised;
    PERFORM pg_notify('serving_changed', raised::text);
    RETURN NULL;
END
$$
"""


def _trigger_name(table: str, event: str) -> str:
    return f"serving_changed_{table}_{event.split()[0].lower()}"


def upgrade():
    op.create_table(
        "serving_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_state")),
    )
    op.execute("INSERT INTO serving_state (id, revision) VALUES (1, 0)")
    op.create_table(
        "serving_node",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("applied_revision", sa.BigInteger(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("policies", sa.Integer(), nullable=False),
        sa.Column("certificates", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_node")),
        sa.UniqueConstraint("name", name=op.f("uq_serving_node_name")),
    )
    op.create_table(
        "acme_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("directory_url", sa.String(length=500), nullable=False),
        sa.Column("key_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acme_account")),
        sa.UniqueConstraint("directory_url", name=op.f("uq_acme_account_directory_url")),
    )
    op.create_table(
        "acme_challenge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=255), nullable=False),
        sa.Column("validation", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acme_challenge")),
        sa.UniqueConstraint("token", name=op.f("uq_acme_challenge_token")),
    )
    with op.batch_alter_table("certificate") as batch:
        batch.add_column(sa.Column("fullchain_pem", sa.Text(), nullable=True))
        batch.add_column(sa.Column("key_sealed", sa.Text(), nullable=True))
    with op.batch_alter_table("dns_observation") as batch:
        batch.add_column(sa.Column("serving_revision", sa.BigInteger(), nullable=True))
    _create_triggers()


def _create_triggers():
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute(POSTGRESQL_FUNCTION)
    for table, events in WATCHED.items():
        for event in events:
            name = _trigger_name(table, event)
            if postgresql:
                op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} "
                           "FOR EACH STATEMENT EXECUTE FUNCTION serving_changed()")
            else:
                op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} "
                           "BEGIN UPDATE serving_state SET revision = revision + 1 WHERE id = 1; END")


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, events in WATCHED.items():
        for event in events:
            op.execute(f"DROP TRIGGER {_trigger_name(table, event)}" + (f" ON {table}" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION serving_changed()")
    with op.batch_alter_table("dns_observation") as batch:
        batch.drop_column("serving_revision")
    with op.batch_alter_table("certificate") as batch:
        batch.drop_column("key_sealed")
        batch.drop_column("fullchain_pem")
    op.drop_table("acme_challenge")
    op.drop_table("acme_account")
    op.drop_table("serving_node")
    op.drop_table("serving_state")
