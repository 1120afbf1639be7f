"""Alert rules per domain, who receives what, incidents and the outbox of their notices.

An incident is one cause (a domain, an MX host, a reporting organisation) that a rule found,
with a row per domain it touches, so that each recipient hears only of the domains they see.
Deliveries are the outbox: one row per notice, recipient and channel, unique, so that a notice
is queued once however many runs or hosts evaluate the rules.
"""

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from stspolicy.accounts.models import User
from stspolicy.base.words import from_json
from stspolicy.extensions import UTCDateTime, db, utcnow
from stspolicy.policies.models import Domain

PENDING, SENT, FAILED = "pending", "sent", "failed"
OPENED, RESOLVED, DIGEST = "opened", "resolved", "digest"
EMAIL, WEBHOOK = "email", "webhook"
PAYLOAD_FORMATS = ("json", "slack")


class AlertRule(db.Model):
    """A domain's setting of one rule; a rule without a row is on with its default parameters."""

    __table_args__ = (UniqueConstraint("domain_id", "rule"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(40))
    enabled: Mapped[bool]
    parameters: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(300))


class AlertPreference(db.Model):
    """What a user receives unless a domain says otherwise; a user without a row receives both."""

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    alerts: Mapped[bool] = mapped_column(default=True)
    digest: Mapped[bool] = mapped_column(default=True)


class AlertSubscription(db.Model):
    """A user's choice for one domain, over their preference: alerts of this domain or not."""

    __table_args__ = (UniqueConstraint("user_id", "domain_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id", ondelete="CASCADE"), index=True)
    alerts: Mapped[bool]


class AlertWebhook(db.Model):
    """A URL that receives what its user receives, as JSON signed with `secret` (HMAC-SHA256)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(64))
    payload_format: Mapped[str] = mapped_column(String(8))  # json, or slack (Slack and Matrix hookshot)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship()


class Incident(db.Model):
    """One cause a rule found, from when it was first seen until it cleared.

    `key` (rule and subject) is unique among open incidents: a cause still there is the same
    incident, never a new one.
    """

    __tablename__ = "alert_incident"
    __table_args__ = (
        Index("uq_alert_incident_open_key", "key", unique=True,
              postgresql_where=text("resolved_at IS NULL"), sqlite_where=text("resolved_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(253))
    key: Mapped[str] = mapped_column(String(300))
    title: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    evidence: Mapped[dict] = mapped_column(JSON)
    lines: Mapped[list[str]] = mapped_column(JSON)
    fix: Mapped[str] = mapped_column(Text)
    # The templates and values of title, lines and fix (words.as_json), to show them in the reader's language;
    # NULL for incidents stored before, which read in English.
    texts: Mapped[dict | None] = mapped_column(JSON)

    domains: Mapped[list["IncidentDomain"]] = relationship(
        back_populates="incident", order_by="IncidentDomain.domain_name", cascade="all, delete-orphan",
        passive_deletes=True,
    )

    @property
    def title_words(self) -> str:
        return from_json(self.title, (self.texts or {}).get("title"))

    @property
    def line_words(self) -> list[str]:
        return _lines(self.lines, (self.texts or {}).get("lines"))

    @property
    def fix_words(self) -> str:
        return from_json(self.fix, (self.texts or {}).get("fix"))


class IncidentDomain(db.Model):
    """A domain an incident touches, with its own evidence; it may clear before the incident does."""

    __tablename__ = "alert_incident_domain"
    __table_args__ = (UniqueConstraint("incident_id", "domain_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("alert_incident.id", ondelete="CASCADE"))
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("domain.id", ondelete="SET NULL"), index=True)
    domain_name: Mapped[str] = mapped_column(String(253))
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    evidence: Mapped[dict] = mapped_column(JSON)
    lines: Mapped[list[str]] = mapped_column(JSON)
    line_texts: Mapped[list | None] = mapped_column(JSON)  # as Incident.texts["lines"]
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    incident: Mapped[Incident] = relationship(back_populates="domains")
    domain: Mapped[Domain | None] = relationship()

    @property
    def line_words(self) -> list[str]:
        return _lines(self.lines, self.line_texts)


def _lines(english: list[str], texts: list | None) -> list[str]:
    """Each line as `Words` where its template was stored, else its English."""
    if not isinstance(texts, list) or len(texts) != len(english):
        return list(english)
    return [from_json(line, data) for line, data in zip(english, texts, strict=True)]


class Delivery(db.Model):
    """One notice to one recipient over one channel, rendered when queued; sent at most once.

    `dedupe_key` names the notice (incident, event, user, channel, target; or the digest's
    week), so that queuing it again is a no-op.
    """

    __tablename__ = "alert_delivery"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("alert_incident.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    webhook_id: Mapped[int | None] = mapped_column(ForeignKey("alert_webhook.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))
    recipient: Mapped[str] = mapped_column(String(2000))  # the address, or the webhook's URL
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text)  # the webhook's JSON body
    state: Mapped[str] = mapped_column(String(8), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    incident: Mapped[Incident | None] = relationship()
    user: Mapped[User] = relationship()
    webhook: Mapped[AlertWebhook | None] = relationship()


class AlertLease(db.Model):
    """Who runs the rules now: claimed by one atomic UPDATE, so that runs on several hosts take turns."""

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RefusalDay(db.Model):
    """Reports refused per UTC day, channel and reason, taken from the intake's counters at each run."""

    __tablename__ = "alert_refusal_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    reason: Mapped[str] = mapped_column(String(40), primary_key=True)
    refused_count: Mapped[int] = mapped_column(BigInteger)


class RefusalCounter(db.Model):
    """The intake's refusal counter as the last run read it, to add only what came since."""

    __tablename__ = "alert_refusal_counter"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    reason: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
