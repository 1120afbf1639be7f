"""One-time links that set an account's password (invitations, resets), and MX patterns whose
removal from a policy waits until senders' cached copies of the old policy have expired.

Revision ID: 0013
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "password_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], name=op.f("fk_password_link_user_id_user_account"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_link")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_link_token_hash")),
    )
    op.create_index(op.f("ix_password_link_user_id"), "password_link", ["user_id"])
    op.create_table(
        "scheduled_mx_removal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("mx_patterns", sa.JSON(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(["domain_id"], ["domain.id"], name=op.f("fk_scheduled_mx_removal_domain_id_domain"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_mx_removal")),
    )
    op.create_index(op.f("ix_scheduled_mx_removal_domain_id"), "scheduled_mx_removal", ["domain_id"])
    op.create_index(op.f("ix_scheduled_mx_removal_due_at"), "scheduled_mx_removal", ["due_at"])


def downgrade():
    op.drop_index(op.f("ix_scheduled_mx_removal_due_at"), table_name="scheduled_mx_removal")
    op.drop_index(op.f("ix_scheduled_mx_removal_domain_id"), table_name="scheduled_mx_removal")
    op.drop_table("scheduled_mx_removal")
    op.drop_index(op.f("ix_password_link_user_id"), table_name="password_link")
    op.drop_table("password_link")
