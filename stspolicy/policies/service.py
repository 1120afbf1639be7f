"""Hosting domains: add, change and remove policies as new immutable versions.

Every function takes the session and owns the commit; the audit event goes into the
same transaction. Nothing else happens here: serving the change and publishing its id
is the caller's next step (stspolicy.propagation.propagate).
"""

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stspolicy.base.audit import record_event
from stspolicy.extensions import utcnow
from stspolicy.policies.errors import DomainExists, EnforceNotConfirmed
from stspolicy.policies.models import Domain, PolicyVersion, ScheduledMxRemoval
from stspolicy.policies.queries import current_version, domain_name, find_version
from stspolicy.policies.rules import (
    NONE_MODE_MAX_AGE,
    MxRemoval,
    Policy,
    PolicyError,
    make_policy,
    mx_removal,
    next_policy_id,
    render_policy,
)


def needs_confirmation(current: Policy, new: Policy) -> bool:
    """Switching to enforce makes senders defer mail to MX hosts that fail: ask first."""
    return new.mode == "enforce" and current.mode != "enforce"


@dataclass(frozen=True)
class Removal:
    """Where a domain stands in the RFC 8461 section 8.3 removal."""

    state: str  # "started", "pending" or "deleted"
    deletable_at: datetime | None
    version: PolicyVersion | None = None


def add_domain(session: Session, name: str, policy: Policy, *, actor: str) -> PolicyVersion:
    """Host a new domain with its first policy version.

    The unique name decides, so two concurrent adds of one name give one domain and one
    DomainExists, not a database error.
    """
    normal = domain_name(name)
    domain = Domain(name=normal)
    session.add(domain)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise DomainExists(f"domain {normal} is already hosted") from None
    version = _new_version(session, domain, policy, None, actor=actor)
    record_event(
        session, actor, "domain.add", domain, policy_id=version.policy_id,
        mode=policy.mode, mx=list(policy.mx_patterns), max_age=policy.max_age,
    )
    session.commit()
    return version


def update_policy(
    session: Session,
    domain: Domain,
    *,
    mode: str | None = None,
    mx_patterns: list[str] | None = None,
    max_age: int | str | None = None,
    actor: str,
    enforce_confirmed: bool = False,
) -> PolicyVersion | None:
    """A new current version with the given fields changed; None if nothing changed.

    A switch to enforce needs `enforce_confirmed` (else EnforceNotConfirmed), decided under
    the same lock as the change, so a concurrent change cannot slip one in unconfirmed.
    A change also cancels a removal in progress: the operator wants the policy back.
    """
    _lock(session, domain)
    current = current_version(session, domain)
    policy = make_policy(
        mode if mode is not None else current.mode,
        mx_patterns if mx_patterns is not None else current.mx_patterns,
        max_age if max_age is not None else current.max_age,
    )
    if policy == current.policy:
        return None
    _require_confirmation(session, domain, current.policy, policy, enforce_confirmed)
    return _new_current_version(session, domain, policy, current, actor=actor, action="policy.update")


@dataclass(frozen=True)
class PolicyChange:
    """What `change_policy` did: the new version (None if the policy stayed), the MX patterns it
    took out or kept for later, and the removal it scheduled."""

    version: PolicyVersion | None
    mx_removal: MxRemoval | None
    scheduled: ScheduledMxRemoval | None


def planned_mx_removal(session: Session, domain: Domain, policy: Policy, txt_ttl: int) -> MxRemoval | None:
    """What replacing the current policy by `policy` now would take out of the MX list (see `mx_removal`)."""
    current = current_version(session, domain)
    return mx_removal(current.policy, current.policy_id, policy, utcnow(), txt_ttl)


def change_policy(
    session: Session, domain: Domain, *, mode: str | None = None, mx_patterns: list[str] | None = None,
    max_age: int | str | None = None, actor: str, txt_ttl: int, schedule_mx_removal: bool = False,
    enforce_confirmed: bool = False,
) -> PolicyChange:
    """`update_policy`, told what it does to senders holding the current policy when it drops MX patterns.

    With `schedule_mx_removal`, the safe sequence: the dropped patterns stay in the policy now and
    leave it once the current policy's cached copies have expired (`apply_due_mx_removals`).
    """
    current = current_version(session, domain)
    wanted = make_policy(
        mode if mode is not None else current.mode,
        mx_patterns if mx_patterns is not None else current.mx_patterns,
        max_age if max_age is not None else current.max_age,
    )
    removal = mx_removal(current.policy, current.policy_id, wanted, utcnow(), txt_ttl)
    target = removal.safe_policy if removal and schedule_mx_removal else wanted
    version = update_policy(session, domain, mode=target.mode, mx_patterns=list(target.mx_patterns),
                            max_age=target.max_age, actor=actor, enforce_confirmed=enforce_confirmed)
    scheduled = None
    if removal and schedule_mx_removal:
        scheduled = ScheduledMxRemoval(domain=domain, mx_patterns=list(removal.removed),
                                       due_at=removal.old_policy_until, created_at=utcnow(), created_by=actor)
        session.add(scheduled)
        record_event(session, actor, "policy.removal_scheduled", domain, mx=", ".join(removal.removed),
                     due_at=f"{removal.old_policy_until:%Y-%m-%d %H:%M} UTC")
        session.commit()
    return PolicyChange(version, removal, scheduled)


def cancel_mx_removal(session: Session, domain: Domain, removal_id: int, *, actor: str) -> bool:
    """Drop a scheduled removal of the domain; False when there is none with that id."""
    removal = session.scalar(select(ScheduledMxRemoval).where(
        ScheduledMxRemoval.id == removal_id, ScheduledMxRemoval.domain_id == domain.id))
    if removal is None:
        return False
    session.delete(removal)
    record_event(session, actor, "policy.removal_cancelled", domain, mx=", ".join(removal.mx_patterns))
    session.commit()
    return True


def apply_due_mx_removals(session: Session, now: datetime) -> list[tuple[str, PolicyVersion | None]]:
    """Take out the MX patterns whose removal is due, one domain at a time: (domain name, new version).

    Each row is claimed by deleting it in the transaction of the change, so two runners never apply one twice.
    """
    applied = []
    due = session.execute(select(ScheduledMxRemoval.id, ScheduledMxRemoval.domain_id)
                          .where(ScheduledMxRemoval.due_at <= now).order_by(ScheduledMxRemoval.due_at)).all()
    for removal_id, domain_id in due:
        removal = session.get(ScheduledMxRemoval, removal_id)
        if removal is None or session.execute(
                delete(ScheduledMxRemoval).where(ScheduledMxRemoval.id == removal_id)).rowcount != 1:
            session.rollback()
            continue
        domain, patterns, actor = session.get(Domain, domain_id), removal.mx_patterns, f"schedule:{removal.created_by}"
        current = current_version(session, domain)
        remaining = [pattern for pattern in current.mx_patterns if pattern not in patterns]
        try:
            version = update_policy(session, domain, mx_patterns=remaining, actor=actor)
        except PolicyError as error:
            session.rollback()
            session.execute(delete(ScheduledMxRemoval).where(ScheduledMxRemoval.id == removal_id))
            record_event(session, actor, "policy.removal_skipped", domain, mx=", ".join(patterns),
                         reason=error.message)
            session.commit()
            version = None
        applied.append((domain.name, version))
    return applied


def rollback_to(session: Session, domain: Domain, policy_id: str, *, actor: str,
                enforce_confirmed: bool = False) -> PolicyVersion | None:
    """An earlier version's policy again, as a new version with a new id; None if it is current.

    A new id, not the old one: senders that cached a later policy must see a change (RFC 8461 section 3.1).
    Rolling back to an enforce policy needs `enforce_confirmed` as `update_policy` does.
    """
    _lock(session, domain)
    target = find_version(session, domain, policy_id)
    current = current_version(session, domain)
    if target.policy == current.policy:
        return None
    _require_confirmation(session, domain, current.policy, target.policy, enforce_confirmed)
    return _new_current_version(
        session, domain, target.policy, current, actor=actor, action="policy.rollback", rolled_back_to=policy_id
    )


def _require_confirmation(session: Session, domain: Domain, current: Policy, new: Policy, confirmed: bool) -> None:
    if needs_confirmation(current, new) and not confirmed:
        session.rollback()  # releases the domain's lock
        raise EnforceNotConfirmed(domain, current.mode, new)


def _new_current_version(
    session: Session, domain: Domain, policy: Policy, current: PolicyVersion, *, actor: str, action: str, **detail
) -> PolicyVersion:
    """A new current version, audited; it also cancels a removal in progress."""
    version = _new_version(session, domain, policy, current, actor=actor)
    domain.removal_requested_at = None
    record_event(
        session, actor, action, domain, policy_id=version.policy_id, previous_policy_id=current.policy_id,
        changes=_changes(current.policy, policy), **detail,
    )
    session.commit()
    return version


def remove_domain(session: Session, domain: Domain, *, actor: str, force: bool = False) -> Removal:
    """Remove a domain the way RFC 8461 section 8.3 asks.

    First call: a `mode: none` version with a new id, so senders drop their cached policy.
    Later calls delete the domain once the largest max_age it ever served has passed
    since then; `force` deletes at once.
    """
    now = utcnow()
    if force:
        return _delete(session, domain, actor)
    _lock(session, domain)
    if domain.removal_requested_at is None:
        current = current_version(session, domain)
        none_policy = make_policy("none", current.mx_patterns, min(current.max_age, NONE_MODE_MAX_AGE))
        version = None
        if none_policy != current.policy:
            version = _new_version(session, domain, none_policy, current, actor=actor)
        domain.removal_requested_at = now
        record_event(
            session, actor, "domain.removal_started", domain,
            policy_id=version.policy_id if version else current.policy_id,
        )
        session.commit()
        return Removal("started", _deletable_at(session, domain), version)
    deletable_at = _deletable_at(session, domain)
    if now >= deletable_at:
        return _delete(session, domain, actor)
    return Removal("pending", deletable_at)


def _changes(old: Policy, new: Policy) -> dict[str, list]:
    """The fields that differ, as {field: [old, new]} in JSON-ready values."""
    before, after = asdict(old), asdict(new)
    return {
        field: [list(value), list(after[field])] if isinstance(value, tuple) else [value, after[field]]
        for field, value in before.items()
        if value != after[field]
    }


def _deletable_at(session: Session, domain: Domain) -> datetime:
    longest = session.scalar(select(func.max(PolicyVersion.max_age)).where(PolicyVersion.domain_id == domain.id))
    return domain.removal_requested_at + timedelta(seconds=longest or 0)


def _delete(session: Session, domain: Domain, actor: str) -> Removal:
    name = domain.name
    record_event(session, actor, "domain.delete", domain_name=name)
    session.delete(domain)
    session.commit()
    return Removal("deleted", None)


def _new_version(
    session: Session, domain: Domain, policy: Policy, previous: PolicyVersion | None, *, actor: str
) -> PolicyVersion:
    now = utcnow()
    version = PolicyVersion(
        domain=domain,
        policy_id=next_policy_id(previous.policy_id if previous else None, now),
        mode=policy.mode,
        mx_patterns=list(policy.mx_patterns),
        max_age=policy.max_age,
        policy_text=render_policy(policy),
        created_at=now,
        created_by=actor,
    )
    session.add(version)
    return version


def _lock(session: Session, domain: Domain) -> None:
    """Serialise changes to one domain (PostgreSQL row lock; SQLite serialises writers anyway)."""
    session.execute(select(Domain.id).where(Domain.id == domain.id).with_for_update())
