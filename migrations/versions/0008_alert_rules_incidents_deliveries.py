"""Alerts: rules per domain, preferences, subscriptions and webhooks per user, incidents with their
domains, the outbox of notices, the run lease, and the intake's refusals per day.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], name=op.f(f"fk_{table}_user_id_user_account"),
                                   ondelete="CASCADE")


def upgrade():
    op.create_table(
        "alert_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(["domain_id"], ["domain.id"], name=op.f("fk_alert_rule_domain_id_domain"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rule")),
        sa.UniqueConstraint("domain_id", "rule", name=op.f("uq_alert_rule_domain_id_rule")),
    )
    op.create_table(
        "alert_preference",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("alerts", sa.Boolean(), nullable=False),
        sa.Column("digest", sa.Boolean(), nullable=False),
        _user_fk("alert_preference"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_alert_preference")),
    )
    op.create_table(
        "alert_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("alerts", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["domain_id"], ["domain.id"], name=op.f("fk_alert_subscription_domain_id_domain"),
                                ondelete="CASCADE"),
        _user_fk("alert_subscription"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_subscription")),
        sa.UniqueConstraint("user_id", "domain_id", name=op.f("uq_alert_subscription_user_id_domain_id")),
    )
    op.create_index(op.f("ix_alert_subscription_domain_id"), "alert_subscription", ["domain_id"])
    op.create_table(
        "alert_webhook",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("payload_format", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _user_fk("alert_webhook"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_webhook")),
    )
    op.create_index(op.f("ix_alert_webhook_user_id"), "alert_webhook", ["user_id"])
    op.create_table(
        "alert_incident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=253), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("fix", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_incident")),
    )
    op.create_index(op.f("ix_alert_incident_resolved_at"), "alert_incident", ["resolved_at"])
    # One open incident per cause: a second run, even on another host, updates it instead.
    op.create_index("uq_alert_incident_open_key", "alert_incident", ["key"], unique=True,
                    postgresql_where=sa.text("resolved_at IS NULL"), sqlite_where=sa.text("resolved_at IS NULL"))
    op.create_table(
        "alert_incident_domain",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=True),
        sa.Column("domain_name", sa.String(length=253), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["domain_id"], ["domain.id"], name=op.f("fk_alert_incident_domain_domain_id_domain"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["incident_id"], ["alert_incident.id"],
                                name=op.f("fk_alert_incident_domain_incident_id_alert_incident"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_incident_domain")),
        sa.UniqueConstraint("incident_id", "domain_name", name=op.f("uq_alert_incident_domain_incident_id_domain_name")),
    )
    op.create_index(op.f("ix_alert_incident_domain_domain_id"), "alert_incident_domain", ["domain_id"])
    op.create_table(
        "alert_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=True),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("recipient", sa.String(length=2000), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["alert_incident.id"],
                                name=op.f("fk_alert_delivery_incident_id_alert_incident"), ondelete="CASCADE"),
        _user_fk("alert_delivery"),
        sa.ForeignKeyConstraint(["webhook_id"], ["alert_webhook.id"],
                                name=op.f("fk_alert_delivery_webhook_id_alert_webhook"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_delivery")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_alert_delivery_dedupe_key")),
    )
    for column in ("incident_id", "user_id", "webhook_id", "state"):
        op.create_index(op.f(f"ix_alert_delivery_{column}"), "alert_delivery", [column])
    op.create_table(
        "alert_lease",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_alert_lease")),
    )
    op.create_table(
        "alert_refusal_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("refused_count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "channel", "reason", name=op.f("pk_alert_refusal_day")),
    )
    op.create_table(
        "alert_refusal_counter",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "reason", name=op.f("pk_alert_refusal_counter")),
    )


def downgrade():
    for table in ("alert_refusal_counter", "alert_refusal_day", "alert_lease", "alert_delivery",
                  "alert_incident_domain", "alert_incident", "alert_webhook", "alert_subscription",
                  "alert_preference", "alert_rule"):
        op.drop_table(table)
