"""Who receives what: preferences, per-domain subscriptions, webhooks, and the audience of an incident.

A user hears only of the domains they may see (every domain for an admin, their grants for
a member), and of those only the ones they did not turn off. Alerts about the intake as a
whole go to admins.
"""

import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from reports.alerts.models import PAYLOAD_FORMATS, AlertPreference, AlertSubscription, AlertWebhook
from stspolicy.accounts.models import Grant, User
from stspolicy.base.audit import record_event
from stspolicy.policies.models import Domain

MAX_WEBHOOKS = 5
MAX_URL_LENGTH = 2000


class SubscriptionError(ValueError):
    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.message, self.field = message, field


@dataclass
class Recipient:
    user: User
    alerts: bool  # the user's preference
    digest: bool
    domains: set[str] = field(default_factory=set)  # the domains whose alerts they receive
    visible: set[str] = field(default_factory=set)  # every domain they may see
    webhooks: list[AlertWebhook] = field(default_factory=list)


def preference(session: Session, user: User) -> AlertPreference:
    return session.get(AlertPreference, user.id) or AlertPreference(user_id=user.id, alerts=True, digest=True)


def recipients(session: Session) -> list[Recipient]:
    """Every user with what they receive, in a few queries."""
    names = dict(session.execute(select(Domain.id, Domain.name)).all())
    preferences = {row.user_id: row for row in session.scalars(select(AlertPreference))}
    chosen = {(row.user_id, row.domain_id): row.alerts for row in session.scalars(select(AlertSubscription))}
    granted: dict[int, set[int]] = {}
    for user_id, domain_id in session.execute(select(Grant.user_id, Grant.domain_id)):
        granted.setdefault(user_id, set()).add(domain_id)
    hooks: dict[int, list[AlertWebhook]] = {}
    for hook in session.scalars(select(AlertWebhook).order_by(AlertWebhook.id)):
        hooks.setdefault(hook.user_id, []).append(hook)
    found = []
    for user in session.scalars(select(User).order_by(User.email)):
        chosen_pref = preferences.get(user.id)
        alerts, digest = (chosen_pref.alerts, chosen_pref.digest) if chosen_pref else (True, True)
        ids = set(names) if user.is_admin else granted.get(user.id, set())
        domains = {names[i] for i in ids if chosen.get((user.id, i), alerts)}
        found.append(Recipient(user, alerts, digest, domains, {names[i] for i in ids}, hooks.get(user.id, [])))
    return found


def set_preference(session: Session, user: User, *, alerts: bool, digest: bool) -> None:
    row = session.get(AlertPreference, user.id)
    if row is None:
        row = AlertPreference(user_id=user.id)
        session.add(row)
    row.alerts, row.digest = alerts, digest
    session.commit()


def subscribed(session: Session, user: User, domain: Domain) -> bool:
    row = session.scalar(select(AlertSubscription).where(AlertSubscription.user_id == user.id,
                                                         AlertSubscription.domain_id == domain.id))
    return row.alerts if row else preference(session, user).alerts


def set_subscription(session: Session, user: User, domain: Domain, alerts: bool) -> None:
    """The user's choice for one domain (the caller made sure they may see it)."""
    row = session.scalar(select(AlertSubscription).where(AlertSubscription.user_id == user.id,
                                                         AlertSubscription.domain_id == domain.id))
    if row is None:
        row = AlertSubscription(user_id=user.id, domain_id=domain.id, alerts=alerts)
        session.add(row)
    row.alerts = alerts
    session.commit()


def webhooks_of(session: Session, user: User) -> list[AlertWebhook]:
    return list(session.scalars(select(AlertWebhook).where(AlertWebhook.user_id == user.id).order_by(AlertWebhook.id)))


def add_webhook(session: Session, user: User, url: str, payload_format: str, *, actor: str) -> AlertWebhook:
    """A new webhook with a new secret, shown to its user to verify the signature."""
    url = url.strip()
    parts = urlsplit(url)
    if len(url) > MAX_URL_LENGTH or parts.scheme not in ("https", "http") or not parts.hostname:
        raise SubscriptionError("the webhook needs an https:// (or http://) URL", "url")
    if parts.username or parts.password:
        raise SubscriptionError("put no user or password in the URL: requests are signed instead", "url")
    if payload_format not in PAYLOAD_FORMATS:
        raise SubscriptionError(f"the format must be one of {', '.join(PAYLOAD_FORMATS)}", "payload_format")
    if len(webhooks_of(session, user)) >= MAX_WEBHOOKS:
        raise SubscriptionError(f"at most {MAX_WEBHOOKS} webhooks per account", "url")
    hook = AlertWebhook(user_id=user.id, url=url, secret=secrets.token_hex(32), payload_format=payload_format)
    session.add(hook)
    record_event(session, actor, "alerts.webhook_add", email=user.email, url=parts.netloc)
    session.commit()
    return hook


def remove_webhook(session: Session, hook: AlertWebhook, *, actor: str) -> None:
    record_event(session, actor, "alerts.webhook_remove", email=hook.user.email, url=urlsplit(hook.url).netloc)
    session.delete(hook)
    session.commit()
