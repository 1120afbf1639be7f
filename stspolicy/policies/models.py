"""Hosted domains and their immutable policy versions."""


from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from stspolicy.extensions import UTCDateTime, db, utcnow
from stspolicy.policies.names import to_unicode
from stspolicy.policies.rules import Policy


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


class ScheduledMxRemoval(db.Model):
    """MX patterns to take out of a domain's policy at `due_at`, once senders' cached copies of the
    policy that lists them have expired (RFC 8461 section 8.1). The row goes when it is applied."""

    __tablename__ = "scheduled_mx_removal"

    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id", ondelete="CASCADE"), index=True)
    mx_patterns: Mapped[list[str]] = mapped_column(JSON)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(300))

    domain: Mapped[Domain] = relationship()
