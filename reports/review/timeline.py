"""What changed on our side over a range, to mark on a chart's time axis: the policy versions we
published, and the TLSA records and certificates of each MX host as `dns check` saw them change."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stspolicy.dns.models import DnsObservation, MxObservation
from stspolicy.policies.models import Domain, PolicyVersion

POLICY, TLSA, CERTIFICATE = "policy", "tlsa", "certificate"


@dataclass(frozen=True)
class Change:
    at: datetime
    kind: str  # POLICY, TLSA or CERTIFICATE
    subject: str  # a policy id, or an MX host
    text: str

    @property
    def day(self) -> date:
        return self.at.date()


def changes(session: Session, domain: Domain, since: date, until: date) -> list[Change]:
    """The changes from the start of `since` to the end of `until` (UTC), oldest first."""
    start = datetime.combine(since, time(), UTC)
    end = datetime.combine(until + timedelta(days=1), time(), UTC)
    found = [
        Change(version.created_at, POLICY, version.policy_id,
               f"policy id {version.policy_id}: mode {version.mode}, mx {', '.join(version.mx_patterns)}")
        for version in session.scalars(
            select(PolicyVersion).where(PolicyVersion.domain_id == domain.id, PolicyVersion.created_at >= start,
                                        PolicyVersion.created_at < end).order_by(PolicyVersion.id))
    ]
    return sorted(found + _mx_changes(session, domain, start, end), key=lambda change: (change.at, change.kind))


def _mx_changes(session: Session, domain: Domain, start: datetime, end: datetime) -> list[Change]:
    """A host's TLSA set or certificate that differs from the check before: that check may be before `start`."""
    checks = (DnsObservation.domain_id == domain.id, DnsObservation.kind == "check")
    before = session.scalar(select(func.max(DnsObservation.observed_at)).where(*checks,
                                                                                DnsObservation.observed_at < start))
    rows = session.execute(
        select(DnsObservation.observed_at, MxObservation.host, MxObservation.tlsa_records,
               MxObservation.certificate_sha256, MxObservation.not_after)
        .join(MxObservation, MxObservation.observation_id == DnsObservation.id)
        .where(*checks, DnsObservation.observed_at >= (before or start), DnsObservation.observed_at < end)
        .order_by(DnsObservation.observed_at, MxObservation.id)
    )
    last: dict[str, tuple] = {}
    found = []
    for observed_at, host, records, certificate, not_after in rows:
        tlsa = tuple(sorted(records))
        if host in last and observed_at >= start:
            seen_tlsa, seen_certificate = last[host]
            if tlsa != seen_tlsa:
                found.append(Change(observed_at, TLSA, host, f"{host}: TLSA records {_records(tlsa)}"))
            if certificate and seen_certificate and certificate != seen_certificate:
                expires = f", valid until {not_after:%Y-%m-%d}" if not_after else ""
                found.append(Change(observed_at, CERTIFICATE, host,
                                    f"{host}: certificate {certificate[:16]}…{expires}"))
        last[host] = (tlsa, certificate or (last.get(host, (None, None))[1]))
    return found


def _records(records: tuple[str, ...]) -> str:
    return "; ".join(records) if records else "none"
