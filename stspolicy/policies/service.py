"""Hosting domains: add, change and remove policies as new immutable versions.

Every function takes the session and owns the commit; the audit event goes into the
same transaction. After each commit the policy snapshot that the well-known endpoint
serves is told, and the domain's policy file that nginx serves is rewritten; then a
domain whose `_mta-sts` record we publish (stspolicy.dns.publish) gets the new id written
to DNS, so the id never names a policy that is not served yet (RFC 8461 section 8.1). If
the DNS write fails, PublishError says so while the new policy stays served.
"""


from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stspolicy.audit import record_event
from stspolicy.dns.publish import publish_policy_id
from stspolicy.dns.records import DnsRecord
from stspolicy.extensions import utcnow
from stspolicy.policies.errors import DomainExists, EnforceNotConfirmed
from stspolicy.policies.files import publish_policy_files
from stspolicy.policies.models import Domain, PolicyVersion
from stspolicy.policies.queries import current_version, domain_name, find_version
from stspolicy.policies.rules import (
    NONE_MODE_MAX_AGE,
    Policy,
    make_policy,
    next_policy_id,
    policy_warnings,
    render_policy,
)
from stspolicy.policies.snapshot import notify_policies_changed


def needs_confirmation(current: Policy, new: Policy) -> bool:
    """Switching to enforce makes senders defer mail to MX hosts that fail: ask first."""
    return new.mode == "enforce" and current.mode != "enforce"


@dataclass(frozen=True)
class Removal:
    """Where a domain stands in the RFC 8461 section 8.3 removal."""

    state: str  # "started", "pending" or "deleted"
    deletable_at: datetime | None
    version: PolicyVersion | None = None


def domain_summary(domain: Domain, version: PolicyVersion, records: list[DnsRecord]) -> dict:
    """A domain's current state as plain JSON-ready values."""
    return {
        "domain": domain.name,
        "domain_unicode": domain.unicode_name,
        "policy_id": version.policy_id,
        "mode": version.mode,
        "mx": list(version.mx_patterns),
        "max_age": version.max_age,
        "policy_text": version.policy_text,
        "created_at": version.created_at.isoformat(),
        "removal_requested_at": domain.removal_requested_at.isoformat() if domain.removal_requested_at else None,
        "dns_records": [record.as_dict() for record in records],
        "warnings": [warning.as_dict() for warning in policy_warnings(domain.name, version.policy)],
    }


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
    _commit(session, normal)
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
    """Publish the policy with the given fields changed; None if nothing changed.

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
    return _publish(session, domain, policy, current, actor=actor, action="policy.update")


def rollback_to(session: Session, domain: Domain, policy_id: str, *, actor: str,
                enforce_confirmed: bool = False) -> PolicyVersion | None:
    """Serve an earlier version's policy again, as a new version with a new id; None if it is current.

    A new id, not the old one: senders that cached a later policy must see a change (RFC 8461 section 3.1).
    Rolling back to an enforce policy needs `enforce_confirmed` as `update_policy` does.
    """
    _lock(session, domain)
    target = find_version(session, domain, policy_id)
    current = current_version(session, domain)
    if target.policy == current.policy:
        return None
    _require_confirmation(session, domain, current.policy, target.policy, enforce_confirmed)
    return _publish(
        session, domain, target.policy, current, actor=actor, action="policy.rollback", rolled_back_to=policy_id
    )


def _require_confirmation(session: Session, domain: Domain, current: Policy, new: Policy, confirmed: bool) -> None:
    if needs_confirmation(current, new) and not confirmed:
        session.rollback()  # releases the domain's lock
        raise EnforceNotConfirmed(domain, current.mode, new)


def _publish(
    session: Session, domain: Domain, policy: Policy, current: PolicyVersion, *, actor: str, action: str, **detail
) -> PolicyVersion:
    """A new current version, audited; it also cancels a removal in progress."""
    version = _new_version(session, domain, policy, current, actor=actor)
    domain.removal_requested_at = None
    record_event(
        session, actor, action, domain, policy_id=version.policy_id, previous_policy_id=current.policy_id,
        changes=_changes(current.policy, policy), **detail,
    )
    _commit(session, domain.name)
    publish_policy_id(session, domain, version)
    return version


def remove_domain(session: Session, domain: Domain, *, actor: str, force: bool = False) -> Removal:
    """Remove a domain the way RFC 8461 section 8.3 asks.

    First call: publish `mode: none` with a new id, so senders drop their cached policy.
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
        _commit(session, domain.name)
        if version is not None:
            publish_policy_id(session, domain, version)
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
    _commit(session, name)
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


def _commit(session: Session, name: str) -> None:
    """Commit, then serve the change: this process's snapshot at once, nginx's policy file now."""
    session.commit()
    notify_policies_changed()
    publish_policy_files([name])
