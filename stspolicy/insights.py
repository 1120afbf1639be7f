"""Figures from outside the policy service that pages show next to a domain.

Each function answers for a list of domains and leaves out a domain it knows nothing
about; pages then say so ("no reports", "not checked"). DNS checks come from
`flask dns check`; TLS-RPT reports are the seam still to be wired to the report tables.
"""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .dns_models import DnsObservation
from .domains import current_versions
from .models import Domain


@dataclass(frozen=True)
class FailureFigures:
    """TLS sessions that senders reported for a domain over some days, by policy type."""

    days: int
    successful_sessions: int
    failed_sessions: int
    sts_failed_sessions: int

    @property
    def failure_rate(self) -> float | None:
        total = self.successful_sessions + self.failed_sessions
        return self.failed_sessions / total if total else None


def failure_figures(session: Session, domains: list[Domain], days: int) -> dict[int, FailureFigures]:
    """Reported TLS failures of the last `days` days, keyed by domain id; no reports yet, so none."""
    return {}


def dns_in_sync(session: Session, domains: list[Domain]) -> dict[int, bool]:
    """Whether the latest DNS check found no problem for the current policy id, keyed by domain id."""
    latest = (
        select(func.max(DnsObservation.id))
        .where(DnsObservation.kind == "check", DnsObservation.domain_id.in_([domain.id for domain in domains]))
        .group_by(DnsObservation.domain_id)
    )
    versions = current_versions(session, domains)
    return {
        check.domain_id: check.status == "ok" and check.policy_id == versions[check.domain_id].policy_id
        for check in session.scalars(select(DnsObservation).where(DnsObservation.id.in_(latest)))
    }
