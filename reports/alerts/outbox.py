"""Sending what is queued: each delivery is marked sent in its own commit right after it went out.

A channel that is unavailable (the relay refuses connections, a webhook answers 5xx after
its retries) leaves its deliveries pending for a later run, after a pause that grows with
the failed attempts (a run every few minutes does not hammer a relay that is down); after
GIVE_UP_AFTER they are marked failed.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from reports.alerts.channels import DeliveryFailed, Mail, Mailer, WebhookPoster, message_id
from reports.alerts.models import EMAIL, FAILED, PENDING, SENT, Delivery
from reports.alerts.settings import AlertSettings
from stspolicy.extensions import utcnow

GIVE_UP_AFTER = timedelta(days=3)
MAX_PAUSE = timedelta(hours=1)


@dataclass
class Sent:
    sent: int = 0
    failed: int = 0
    unavailable: list[str] = field(default_factory=list)  # why channels could not be used this time


def pause(attempts: int) -> timedelta:
    return min(timedelta(minutes=2 ** (attempts - 1)), MAX_PAUSE)


def send_due(session: Session, now: datetime, settings: AlertSettings, *, mailer: Mailer | None = None,
             poster: WebhookPoster | None = None) -> Sent:
    due = list(session.scalars(
        select(Delivery).where(Delivery.state == PENDING, Delivery.next_attempt_at <= now)
        .options(selectinload(Delivery.webhook)).order_by(Delivery.id)))
    outcome = Sent()
    if not due:
        return outcome
    if mailer is None and settings.smtp is not None:
        mailer = Mailer(settings.smtp)
    poster = poster or WebhookPoster(settings.webhooks)
    down: dict = {}  # email, or a webhook's id -> when to try it again; not in this run
    try:
        for delivery in due:
            channel_key = EMAIL if delivery.channel == EMAIL else delivery.webhook_id
            if channel_key in down:
                delivery.next_attempt_at = down[channel_key]
                session.commit()
                continue
            delivery.attempts += 1
            try:
                _send(delivery, settings, mailer, poster)
            except DeliveryFailed as error:
                delivery.last_error = str(error)
                if not error.temporary or now - delivery.created_at >= GIVE_UP_AFTER:
                    delivery.state = FAILED
                    outcome.failed += 1
                else:
                    delivery.next_attempt_at = down[channel_key] = now + pause(delivery.attempts)
                    outcome.unavailable.append(str(error))
            else:
                delivery.state, delivery.sent_at, delivery.last_error = SENT, utcnow(), None
                outcome.sent += 1
            session.commit()
    finally:
        if mailer is not None:
            mailer.close()
    return outcome


def _send(delivery: Delivery, settings: AlertSettings, mailer: Mailer | None, poster: WebhookPoster) -> None:
    if delivery.channel == EMAIL:
        if mailer is None:
            raise DeliveryFailed("ALERT_SMTP_HOST is not set: mail cannot be sent", temporary=True)
        mailer.send(Mail(delivery.recipient, delivery.subject, delivery.body_text, delivery.body_html,
                         message_id(delivery.dedupe_key, mailer.settings.mail_from)))
    else:
        poster.post(delivery.webhook.url, delivery.webhook.secret, delivery.payload.encode(), delivery.id)
