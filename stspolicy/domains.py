"""Hosting domains: add, change and remove policies as new immutable versions.

Every function takes the session and owns the commit. After each commit the policy
snapshot that the well-known endpoint serves is told, and the domain's policy file that
nginx serves is rewritten; then a domain whose `_mta-sts` record we publish
(publishing.py) gets the new id written to DNS, so the id never names a policy that is
not served yet (RFC 8461 section 8.1). If the DNS write fails, PublishError says so while
the new policy stays served.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import Domain, PolicyVersion, utcnow
from .names import InvalidName, normalize_domain
from .policy import NONE_MODE_MAX_AGE, Policy, make_policy, next_policy_id, render_policy
from .policyfiles import publish_policy_files
from .publishing import publish_policy_id
from .records import DnsRecord, records_to_publish
from .snapshot import notify_policies_changed


class DomainError(ValueError):
    """A request about hosted domains that cannot be done; `field` names the input at fault."""

    def __init__(self, message: str, field: str = "domain"):
        super().__init__(message)
        self.field = field
        self.message = message


class DomainNotFound(DomainError):
    pass


@dataclass(frozen=True)
class Removal:
    """Where a domain stands in the RFC 8461 section 8.3 removal."""

    state: str  # "started", "pending" or "deleted"
    deletable_at: datetime | None
    version: PolicyVersion | None = None


def domain_name(name: str) -> str:
    """The stored form of a domain name, or DomainError naming what is wrong."""
    try:
        return normalize_domain(name)
    except InvalidName as error:
        raise DomainError(str(error)) from None


def find_domain(session: Session, name: str) -> Domain | None:
    return session.scalar(select(Domain).where(Domain.name == domain_name(name)))


def get_domain(session: Session, name: str) -> Domain:
    domain = find_domain(session, name)
    if domain is None:
        raise DomainNotFound(f"domain {domain_name(name)} is not hosted here")
    return domain


def list_domains(session: Session) -> list[Domain]:
    return list(session.scalars(select(Domain).order_by(Domain.name)))


def current_version(session: Session, domain: Domain) -> PolicyVersion:
    return session.scalars(
        select(PolicyVersion).where(PolicyVersion.domain_id == domain.id).order_by(PolicyVersion.id.desc()).limit(1)
    ).one()


def dns_records(domain: str, policy_id: str, sts_target: str = "") -> list[DnsRecord]:
    """The records `domain` must publish for `policy_id`, with this deployment's settings.

    `sts_target`: the domain is delegated (RFC 8461 section 8.2) and `_mta-sts` is a CNAME there.
    """
    config = current_app.config
    return records_to_publish(
        domain,
        policy_id,
        rua=config["TLSRPT_RUA"],
        policy_host_cname=config["POLICY_HOST_CNAME"],
        policy_host_addresses=config["POLICY_HOST_ADDRESSES"],
        sts_target=sts_target,
    )


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
        "dns_records": [{"name": r.name, "type": r.type, "value": r.value} for r in records],
    }


def add_domain(session: Session, name: str, policy: Policy, *, actor: str) -> PolicyVersion:
    """Host a new domain with its first policy version."""
    normal = domain_name(name)
    if session.scalar(select(Domain.id).where(Domain.name == normal)) is not None:
        raise DomainError(f"domain {normal} is already hosted")
    domain = Domain(name=normal)
    session.add(domain)
    version = _new_version(session, domain, policy, None, actor=actor)
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
) -> PolicyVersion | None:
    """Publish the policy with the given fields changed; None if nothing changed.

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
    version = _new_version(session, domain, policy, current, actor=actor)
    domain.removal_requested_at = None
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
        return _delete(session, domain)
    _lock(session, domain)
    if domain.removal_requested_at is None:
        current = current_version(session, domain)
        none_policy = make_policy("none", current.mx_patterns, min(current.max_age, NONE_MODE_MAX_AGE))
        version = None
        if none_policy != current.policy:
            version = _new_version(session, domain, none_policy, current, actor=actor)
        domain.removal_requested_at = now
        _commit(session, domain.name)
        if version is not None:
            publish_policy_id(session, domain, version)
        return Removal("started", _deletable_at(session, domain), version)
    deletable_at = _deletable_at(session, domain)
    if now >= deletable_at:
        return _delete(session, domain)
    return Removal("pending", deletable_at)


def _deletable_at(session: Session, domain: Domain) -> datetime:
    longest = session.scalar(select(func.max(PolicyVersion.max_age)).where(PolicyVersion.domain_id == domain.id))
    return domain.removal_requested_at + timedelta(seconds=longest or 0)


def _delete(session: Session, domain: Domain) -> Removal:
    name = domain.name
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
