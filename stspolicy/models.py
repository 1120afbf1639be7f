"""Hosted domains and their immutable policy versions."""

from datetime import UTC, datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import UTCDateTime, db
from .names import to_unicode
from .policy import Policy


def utcnow() -> datetime:
    return datetime.now(UTC)


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
