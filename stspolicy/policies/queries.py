"""Finding hosted domains, their policy versions and the policies they serve now."""

import hashlib
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stspolicy.extensions import db
from stspolicy.policies.errors import DomainError, DomainNotFound
from stspolicy.policies.models import Domain, PolicyVersion, ScheduledMxRemoval
from stspolicy.policies.names import InvalidName, normalize_domain
from stspolicy.policies.rules import POLICY_ID


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


def current_versions(session: Session, domains: list[Domain]) -> dict[int, PolicyVersion]:
    """Each domain's current version in one query, keyed by domain id."""
    ids = [domain.id for domain in domains]
    latest = (
        select(func.max(PolicyVersion.id)).where(PolicyVersion.domain_id.in_(ids)).group_by(PolicyVersion.domain_id)
    )
    return {version.domain_id: version for version in session.scalars(
        select(PolicyVersion).where(PolicyVersion.id.in_(latest))
    )}


def recent_versions(session: Session, domain: Domain, limit: int) -> list[PolicyVersion]:
    """The domain's newest `limit` versions, newest first."""
    return list(session.scalars(
        select(PolicyVersion).where(PolicyVersion.domain_id == domain.id).order_by(PolicyVersion.id.desc()).limit(limit)
    ))


def find_version(session: Session, domain: Domain, policy_id: str) -> PolicyVersion:
    """DomainNotFound for an id that is not one, without a query: PostgreSQL refuses a NUL in one."""
    version = POLICY_ID.fullmatch(policy_id) and session.scalar(
        select(PolicyVersion).where(PolicyVersion.domain_id == domain.id, PolicyVersion.policy_id == policy_id)
    )
    if not version:
        raise DomainNotFound(f"domain {domain.name} has no policy version {policy_id}", field="policy_id")
    return version


@dataclass(frozen=True)
class ServedPolicy:
    policy_id: str | None  # None when read from a policy file, which holds only the policy text
    body: bytes

    @property
    def etag(self) -> str:
        return f'"{self.policy_id or hashlib.sha256(self.body).hexdigest()[:32]}"'


def load_current_policies(names: Collection[str] | None = None) -> dict[str, ServedPolicy]:
    """Every hosted domain's latest policy version (or only those of `names`), keyed by A-label domain."""
    latest = (
        select(func.max(PolicyVersion.id).label("id")).group_by(PolicyVersion.domain_id).subquery()
    )
    query = (
        select(Domain.name, PolicyVersion.policy_id, PolicyVersion.policy_text)
        .join(PolicyVersion, PolicyVersion.domain_id == Domain.id)
        .join(latest, latest.c.id == PolicyVersion.id)
    )
    if names is not None:
        query = query.where(Domain.name.in_(names))
    rows = db.session.execute(query)
    return {name: ServedPolicy(policy_id, text.encode("ascii")) for name, policy_id, text in rows}


def current_version_ids(session: Session) -> dict[str, int]:
    """Each hosted domain's current version's row id: which of them changed since a copy was made."""
    rows = session.execute(select(Domain.name, func.max(PolicyVersion.id))
                           .join(PolicyVersion, PolicyVersion.domain_id == Domain.id).group_by(Domain.name))
    return {name: row_id for name, row_id in rows}


def policy_fingerprint(session: Session | None = None) -> tuple:
    """Changes whenever a version is added or a domain (with its versions) is deleted.

    The newest creation time is part of it because SQLite reuses the largest row id: a
    domain deleted and another added within one refresh leave count and max(id) equal.
    """
    statement = select(
        func.count(PolicyVersion.id), func.max(PolicyVersion.id), func.max(PolicyVersion.created_at)
    )
    return tuple((session or db.session).execute(statement).one())


def scheduled_mx_removals(session: Session, domain: Domain) -> list[ScheduledMxRemoval]:
    """The domain's MX patterns waiting to leave its policy, soonest first."""
    return list(session.scalars(select(ScheduledMxRemoval).where(ScheduledMxRemoval.domain_id == domain.id)
                                .order_by(ScheduledMxRemoval.due_at)))
