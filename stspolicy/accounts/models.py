"""Accounts, their grants on domains and their API tokens."""


from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from stspolicy.extensions import UTCDateTime, db, utcnow
from stspolicy.policies.models import Domain

ROLES = ("admin", "member")


GRANT_ROLES = ("editor", "viewer")
# The languages of the web UI, English first (the language of the source texts).
LANGUAGES = ("en", "fr")
# The password hash of an invited account until its owner chooses a password: no password matches it.
NO_PASSWORD = "!"  # noqa: S105 (a marker that no argon2 hash can equal)


class User(UserMixin, db.Model):
    """An account: an admin sees every domain, a member only the domains granted to it."""

    __tablename__ = "user_account"  # `user` is reserved in PostgreSQL
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Sessions are signed cookies, not stored: each names the generation it was signed in under,
    # and raising it (sign-out, a new password) ends every session of the account.
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    # The language of the web UI the user chose on their account page; None follows the browser.
    language: Mapped[str | None] = mapped_column(String(8))

    grants: Mapped[list["Grant"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def has_password(self) -> bool:
        return self.password_hash != NO_PASSWORD

    def get_id(self) -> str:
        """What the session remembers: the id and the session generation it was signed in under."""
        return f"{self.id}:{self.session_generation}"


class Grant(db.Model):
    """A member's access to one domain: `editor` may change its policy, `viewer` may only look."""

    __tablename__ = "domain_grant"  # `grant` is reserved in SQL
    __table_args__ = (UniqueConstraint("user_id", "domain_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(8))

    user: Mapped[User] = relationship(back_populates="grants")
    domain: Mapped[Domain] = relationship()


class ApiToken(db.Model):
    """A bearer token for /api/v1, acting as its user; only a SHA-256 of the secret is kept."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class PasswordLink(db.Model):
    """A one-time link that lets an account's owner choose a password: an invitation or a reset.

    Only a SHA-256 of its secret is kept; it ends when used, when it expires or when a newer link is made.
    """

    __tablename__ = "password_link"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()
