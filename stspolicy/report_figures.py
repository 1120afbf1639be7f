"""What the stored TLS-RPT reports say about a domain, for the policy side's pages and commands.

The one module of the policy side that reads reports: the domain list's failure column
and the evidence shown before a switch to enforce. Each function answers for a list of
domains and leaves out a domain it knows nothing about; pages then say so. Both read the
review's rollups by hosted domain (reports.models.DailyTotal, DailyFailure), so DANE blocks
reported under an MX host name count for the domain using that MX.
"""


from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reports.models import DailyFailure, DailyTotal
from stspolicy.dns.findings import against_enforce
from stspolicy.dns.models import DnsObservation
from stspolicy.dns.queries import latest_check
from stspolicy.policies.models import Domain
from stspolicy.policies.rules import Policy

POLICY_TYPES = ("sts", "tlsa", "no-policy-found")


@dataclass(frozen=True)
class FailureFigures:
    """TLS sessions that senders reported for a domain over the last `days` UTC days, by policy type."""

    days: int
    since: date
    by_policy_type: dict[str, tuple[int, int]]  # policy type: (successful, failed)
    last_report_day: date  # the last day a report covered, in the range or before it
    result_types: list[tuple[str, str, int]] = field(default_factory=list)  # (policy type, result type, failed)

    @property
    def successful_session_count(self) -> int:
        return sum(successful for successful, _ in self.by_policy_type.values())

    @property
    def failed_session_count(self) -> int:
        return sum(failed for _, failed in self.by_policy_type.values())

    @property
    def sts_failed_session_count(self) -> int:
        return self.by_policy_type.get("sts", (0, 0))[1]

    @property
    def failure_rate(self) -> float | None:
        total = self.successful_session_count + self.failed_session_count
        return self.failed_session_count / total if total else None

    @property
    def in_range(self) -> bool:
        return bool(self.by_policy_type)


def failure_figures(session: Session, domains: list[Domain], days: int,
                    with_result_types: bool = False) -> dict[int, FailureFigures]:
    """Sessions that reports of the last `days` UTC days (today included) counted, keyed by domain id,
    from the reports' summary totals; a domain with reports only before the range has no counts but
    its last report's day. `with_result_types`: also the failed sessions of the details by result type.
    """
    since = datetime.now(UTC).date() - timedelta(days=days - 1)
    ids = [domain.id for domain in domains]
    counts: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    last: dict[int, date] = {}
    for domain_id, policy_type, successful, failed, day in session.execute(
        select(DailyTotal.domain_id, DailyTotal.policy_type, func.sum(DailyTotal.successful_session_count),
               func.sum(DailyTotal.failed_session_count), func.max(DailyTotal.day))
        .where(DailyTotal.domain_id.in_(ids), DailyTotal.day >= since)
        .group_by(DailyTotal.domain_id, DailyTotal.policy_type)
    ):
        counts[domain_id][policy_type] = (int(successful), int(failed))
        last[domain_id] = max(day, last.get(domain_id, day))
    if older := [domain_id for domain_id in ids if domain_id not in counts]:
        latest = select(func.max(DailyTotal.day)).where(DailyTotal.domain_id == Domain.id).scalar_subquery()
        last |= {domain_id: day for domain_id, day in session.execute(
            select(Domain.id, latest).where(Domain.id.in_(older))) if day is not None}
    result_types: dict[int, list] = defaultdict(list)
    if with_result_types:
        for domain_id, policy_type, result_type, failed in session.execute(
            select(DailyFailure.domain_id, DailyFailure.policy_type, DailyFailure.result_type,
                   func.sum(DailyFailure.failed_session_count))
            .where(DailyFailure.domain_id.in_(ids), DailyFailure.day >= since)
            .group_by(DailyFailure.domain_id, DailyFailure.policy_type, DailyFailure.result_type)
            .order_by(func.sum(DailyFailure.failed_session_count).desc(), DailyFailure.result_type)
        ):
            result_types[domain_id].append((policy_type, result_type, int(failed)))
    return {domain_id: FailureFigures(days, since, counts.get(domain_id, {}), day, result_types[domain_id])
            for domain_id, day in last.items()}


@dataclass(frozen=True)
class EnforceEvidence:
    """What argues against switching a domain to enforce: the latest DNS check and the reports."""

    checked: DnsObservation | None  # the latest DNS check, None if the domain was never checked
    findings: list[dict]  # of that check, judged against the new policy's mx patterns
    failures: FailureFigures | None  # None: no report over the last `days`
    days: int

    @property
    def reported(self) -> FailureFigures | None:
        """The figures when reports cover the last `days`, else None."""
        return self.failures if self.failures is not None and self.failures.in_range else None

    def lines(self) -> list[str]:
        """The same, as lines of plain text (API and CLI)."""
        if self.checked is None:
            dns = ["DNS: never checked, so nothing shows that the MX hosts pass (flask dns check)"]
        else:
            when = f"{self.checked.observed_at:%Y-%m-%d %H:%M} UTC"
            dns = [f"DNS check of {when}: {finding['message']}" for finding in self.findings]
            dns = dns or [f"DNS check of {when}: nothing against enforce"]
        figures = self.reported
        if figures is None:
            return [*dns, f"TLS reports: none over the last {self.days} days, so nothing shows how senders fare"]
        by_type = ", ".join(f"{policy_type} {successful} successful, {failed} failed"
                            for policy_type, (successful, failed) in sorted(figures.by_policy_type.items()))
        failed = "; ".join(f"{count} {result_type} ({policy_type})" for policy_type, result_type, count
                           in figures.result_types[:ENFORCE_RESULT_TYPES_SHOWN])
        return [*dns, f"TLS reports of the last {self.days} days: {figures.sts_failed_session_count} failed "
                      f"MTA-STS sessions, {figures.successful_session_count} successful in all ({by_type})",
                *([f"Failed sessions by result type: {failed}"] if failed else [])]


ENFORCE_EVIDENCE_DAYS = 30
ENFORCE_RESULT_TYPES_SHOWN = 5


def enforce_evidence(session: Session, domain: Domain, policy: Policy,
                     days: int = ENFORCE_EVIDENCE_DAYS) -> EnforceEvidence:
    """Gather what the confirmation of a switch to enforce (with `policy`) shows, for pages, API and CLI alike."""
    checked = latest_check(session, domain)
    findings = against_enforce(checked.findings, [mx.host for mx in checked.mx_hosts],
                               policy.mx_patterns) if checked else []
    return EnforceEvidence(checked, findings,
                           failure_figures(session, [domain], days, with_result_types=True).get(domain.id), days)
