"""What the stored DNS checks and publishing attempts say: the latest, the history, the MX hosts seen;
and the TLSA records published for MX hosts, with the certificates staged for them."""

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stspolicy.dns.dane import TlsaRecord
from stspolicy.dns.models import DnsObservation, MxObservation, StagedCertificate, TlsaPublication
from stspolicy.policies.models import Domain


def latest_observations(session: Session, kind: str, domain_ids: list[int] | None = None) -> list[DnsObservation]:
    """The newest observation of `kind` ("check" or "publish") of each domain, of all when no ids are given."""
    newest = select(func.max(DnsObservation.id)).where(DnsObservation.kind == kind).group_by(DnsObservation.domain_id)
    if domain_ids is not None:
        newest = newest.where(DnsObservation.domain_id.in_(domain_ids))
    return list(session.scalars(select(DnsObservation).where(DnsObservation.id.in_(newest))))


def latest_check(session: Session, domain: Domain) -> DnsObservation | None:
    return session.scalar(
        select(DnsObservation).where(DnsObservation.domain_id == domain.id, DnsObservation.kind == "check")
        .order_by(DnsObservation.observed_at.desc(), DnsObservation.id.desc()).limit(1)
    )


def history(session: Session, domain: Domain, limit: int = 20) -> list[DnsObservation]:
    return list(session.scalars(
        select(DnsObservation).where(DnsObservation.domain_id == domain.id)
        .order_by(DnsObservation.observed_at.desc(), DnsObservation.id.desc()).limit(limit)
    ))


def known_mx_hosts(session: Session, domains: list[Domain]) -> list[str]:
    """The MX hosts that checks of `domains` have looked at."""
    return list(session.scalars(
        select(MxObservation.host).join(MxObservation.observation)
        .where(DnsObservation.domain_id.in_([domain.id for domain in domains]))
        .distinct().order_by(MxObservation.host)
    ))


def active_publications(session: Session, host: str) -> dict[str, TlsaPublication]:
    """The records of `host` in DNS as far as this service knows, by presentation form."""
    rows = session.scalars(select(TlsaPublication).where(TlsaPublication.host == host,
                                                         TlsaPublication.removed_at.is_(None)))
    return {row.record: row for row in rows}


def pending_stage(session: Session, host: str) -> StagedCertificate | None:
    """The certificate staged for `host` and not installed yet, the latest if several."""
    return session.scalar(select(StagedCertificate).where(StagedCertificate.host == host,
                                                          StagedCertificate.installed_at.is_(None))
                          .order_by(StagedCertificate.staged_at.desc(), StagedCertificate.id.desc()).limit(1))


def published_since(session: Session, host: str, record: TlsaRecord) -> datetime | None:
    """When this service first saw `record` in DNS at `_25._tcp.<host>`, if it is there still."""
    row = active_publications(session, host).get(str(record))
    return row.published_at if row else None


def published_ttl(session: Session, host: str) -> int | None:
    """The TTL this service published the TLSA records of `host` with, if it publishes them."""
    return next((row.ttl for row in active_publications(session, host).values()), None)
