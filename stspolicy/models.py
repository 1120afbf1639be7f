"""Hosted domains and their immutable policy versions; accounts, their grants and tokens; the audit log."""

import hashlib
from datetime import UTC, datetime

from flask_login import UserMixin
from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from stspolicy.extensions import UTCDateTime, db
from stspolicy.names import to_unicode
from stspolicy.policy import Policy


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    """A time typed without a zone (a form, an option) that the user was asked to give in UTC."""
    return moment.replace(tzinfo=UTC) if moment else None


class Domain(db.Model):
    """A policy domain we host, stored as its lower-case A-label."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(253), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when removal began (RFC 8461 section 8.3): a `mode: none` version is served until then.
    removal_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    versions: Mapped[list["PolicyVersion"]] = relationship(
        back_populates="domain",
        order_by="PolicyVersion.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    @property
    def unicode_name(self) -> str:
        return to_unicode(self.name)


class PolicyVersion(db.Model):
    """One published policy: never changed after insert; the domain's latest row is current."""

    __table_args__ = (UniqueConstraint("domain_id", "policy_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id", ondelete="CASCADE"), index=True)
    policy_id: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(8))
    mx_patterns: Mapped[list[str]] = mapped_column(JSON)
    max_age: Mapped[int]
    policy_text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(254))

    domain: Mapped[Domain] = relationship(back_populates="versions")

    @property
    def policy(self) -> Policy:
        return Policy(mode=self.mode, mx_patterns=tuple(self.mx_patterns), max_age=self.max_age)


class Certificate(db.Model):
    """The ACME certificate of one host we serve (`mta-sts.<domain>` or an extra host), and its last attempt.

    The key and chain live in a file nginx reads (CERTS_DIR/<host>.pem); this row is what
    the CLI, the UI and the metrics show, and when to try again after a failure.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(253), unique=True)
    serial: Mapped[str | None] = mapped_column(String(64))
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(default=0)


ROLES = ("admin", "member")
GRANT_ROLES = ("editor", "viewer")


class User(UserMixin, db.Model):
    """An account: an admin sees every domain, a member only the domains granted to it."""

    __tablename__ = "user_account"  # `user` is reserved in PostgreSQL
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    grants: Mapped[list["Grant"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def get_id(self) -> str:
        """What the session remembers: the id and a digest of the password hash, so that a new
        password ends every session signed in with the old one."""
        return f"{self.id}:{hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]}"


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


class AuditEvent(db.Model):
    """Who changed what, when. Kept when its domain is deleted (domain_id becomes NULL)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(40))
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("domain.id", ondelete="SET NULL"), index=True)
    domain_name: Mapped[str | None] = mapped_column(String(253))
    detail: Mapped[dict] = mapped_column(JSON)

    domain: Mapped[Domain | None] = relationship()
