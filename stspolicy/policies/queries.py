"""Finding hosted domains and their policy versions."""



from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stspolicy.policies.errors import DomainError, DomainNotFound
from stspolicy.policies.models import Domain, PolicyVersion
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
