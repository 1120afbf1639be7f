"""Figures from outside the policy service that pages show next to a domain.

The seam where TLS-RPT reports and DNS checks plug in: each function answers for a
list of domains and returns nothing for a domain it knows nothing about, and pages say
"no data". Until the report and DNS tables exist, they know nothing.
"""

from dataclasses import dataclass

from sqlalchemy.orm import Session

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
    """Whether DNS last showed the current `_mta-sts` id, keyed by domain id; no checks stored yet."""
    return {}
