"""The audit log: who changed what, when. Services record events in the same transaction as the change.

Below the features that record events: it knows domains and users only by their ids and names.
"""

import getpass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, String, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from stspolicy.base.words import Words, words
from stspolicy.extensions import UTCDateTime, db, utcnow

if TYPE_CHECKING:
    from stspolicy.accounts.models import User
    from stspolicy.policies.models import Domain


def cli_actor() -> str:
    """The actor of a `flask ...` command: the system user who ran it."""
    return f"cli:{getpass.getuser()}"


class AuditEvent(db.Model):
    """Who changed what, when. Kept when its domain is deleted (domain_id becomes NULL)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(40))
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("domain.id", ondelete="SET NULL"), index=True)
    domain_name: Mapped[str | None] = mapped_column(String(253))
    detail: Mapped[dict] = mapped_column(JSON)


# What each action means, for people reading the log; `detail` fills the blanks.
DESCRIPTIONS = {
    "domain.add": words("hosted the domain with policy id {policy_id}"),
    "policy.update": words("changed {changes} (policy id {previous_policy_id} to {policy_id})"),
    "policy.rollback": words("rolled back to {rolled_back_to} (new policy id {policy_id})"),
    "policy.removal_scheduled": words("scheduled the removal of {mx} from the policy for {due_at}"),
    "policy.removal_cancelled": words("cancelled the scheduled removal of {mx}"),
    "policy.removal_skipped": words("did not remove {mx} as scheduled: {reason}"),
    "domain.removal_started": words("started removal: serving mode none"),
    "domain.delete": words("deleted the domain"),
    "dns.mode": words("set DNS publishing to {mode}{where}"),
    "grant.set": words("gave {email} {role} access"),
    "grant.remove": words("removed the access of {email}"),
    "user.create": words("created the {role} account {email}"),
    "user.invite": words("invited {email} as {role}"),
    "user.link": words("made a set-password link ({purpose}) for {email}"),
    "user.password": words("set a new password for {email}"),
    "user.remove": words("removed the account {email}"),
    "token.create": words("created API token #{token_id} '{name}' for {email}"),
    "token.revoke": words("revoked API token #{token_id} '{name}' of {email}"),
    "alerts.rules": words("changed the alert rules {changes}"),
    "alerts.webhook_add": words("added an alert webhook to {url} for {email}"),
    "alerts.webhook_remove": words("removed the alert webhook to {url} of {email}"),
}


# What a member sees of a domain's log: its policy and DNS, not who was given access to it.
MEMBER_VISIBLE_PREFIXES = ("domain.", "policy.", "dns.", "alerts.")


def record_event(
    session: Session, actor: str, action: str, domain: "Domain | None" = None, *, domain_name: str | None = None,
    **detail,
) -> AuditEvent:
    """Add an event to the session; the calling service commits it with its change.

    An event about a domain being deleted names it by `domain_name` only: the row goes.
    """
    event = AuditEvent(
        created_at=utcnow(), actor=actor, action=action, domain_id=domain.id if domain else None,
        domain_name=domain.name if domain else domain_name, detail=detail,
    )
    session.add(event)
    return event


def domain_events(session: Session, domain: "Domain", user: "User", limit: int = 200) -> list[AuditEvent]:
    """The newest events about `domain` that `user` may read, newest first: all for an admin."""
    query = select(AuditEvent).where(AuditEvent.domain_id == domain.id)
    if not user.is_admin:
        query = query.where(or_(*(AuditEvent.action.startswith(prefix) for prefix in MEMBER_VISIBLE_PREFIXES)))
    return list(session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)))


def recent_events(session: Session, limit: int = 200) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)))


def describe(action: str, detail: dict) -> str:
    """One line of plain text for an event (escaped by the template like any other text): `Words`, which a page or
    a mail may show in its reader's language."""
    values = dict(detail)
    if isinstance(values.get("changes"), dict):
        changes = [words("{field} from {old} to {new}", field=field, old=_show(old), new=_show(new))
                   for field, (old, new) in values["changes"].items()]
        values["changes"] = Words(", ".join(f"{{change{n}}}" for n in range(len(changes))), None, None,
                                  {f"change{n}": change for n, change in enumerate(changes)})
    try:
        template = DESCRIPTIONS[action].template
        template.format(**values)  # a value missing from `detail` (Words without values would keep the braces)
    except (KeyError, IndexError, ValueError):
        return action
    return Words(template, None, None, values)


def _show(value) -> str:
    return ", ".join(value) if isinstance(value, list) else str(value)
