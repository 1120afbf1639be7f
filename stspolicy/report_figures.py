"""What the stored TLS-RPT reports say about a domain, for the policy side's pages and commands.

The one module of the policy side that reads reports: the domain list's failure column
and the evidence shown before a switch to enforce. Each function answers for a list of
domains and leaves out a domain it knows nothing about; pages then say so.
"""


from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reports.models import DailyRollup
from stspolicy.dns.findings import against_enforce
from stspolicy.dns.models import DnsObservation
from stspolicy.dns.queries import latest_check
from stspolicy.policies.models import Domain
from stspolicy.policies.rules import Policy


@dataclass(frozen=True)
class FailureFigures:
    """TLS sessions that senders reported for a domain over some days, by policy type."""

    days: int
    successful_session_count: int
    failed_session_count: int
    sts_failed_session_count: int

    @property
    def failure_rate(self) -> float | None:
        total = self.successful_session_count + self.failed_session_count
        return self.failed_session_count / total if total else None


def failure_figures(session: Session, domains: list[Domain], days: int) -> dict[int, FailureFigures]:
    """Sessions that reports of the last `days` UTC days (today included) counted, keyed by domain id.

    From the reports' summary totals: blocks whose policy domain is the domain (DANE blocks
    that name an MX host as policy domain are not counted here).
    """
    since = datetime.now(UTC).date() - timedelta(days=days - 1)
    ids = {domain.name: domain.id for domain in domains}
    rows = session.execute(
        select(DailyRollup.policy_domain, DailyRollup.policy_type, DailyRollup.result_type,
               func.sum(DailyRollup.session_count))
        .where(DailyRollup.policy_domain.in_(ids), DailyRollup.day >= since,
               DailyRollup.result_type.in_(("success", "failure")))
        .group_by(DailyRollup.policy_domain, DailyRollup.policy_type, DailyRollup.result_type)
    )
    totals: dict[str, dict[str, int]] = {}
    for name, policy_type, result_type, count in rows:
        figures = totals.setdefault(name, {"success": 0, "failure": 0, "sts": 0})
        figures[result_type] += int(count)
        if result_type == "failure" and policy_type == "sts":
            figures["sts"] += int(count)
    return {
        ids[name]: FailureFigures(days, figures["success"], figures["failure"], figures["sts"])
        for name, figures in totals.items()
    }


@dataclass(frozen=True)
class EnforceEvidence:
    """What argues against switching a domain to enforce: the latest DNS check and the reports."""

    checked: DnsObservation | None  # the latest DNS check, None if the domain was never checked
    findings: list[dict]  # of that check, judged against the new policy's mx patterns
    failures: FailureFigures | None  # None: no report over the last `days`
    days: int

    def lines(self) -> list[str]:
        """The same, as lines of plain text (API and CLI)."""
        if self.checked is None:
            dns = ["DNS: never checked, so nothing shows that the MX hosts pass (flask dns check)"]
        else:
            when = f"{self.checked.observed_at:%Y-%m-%d %H:%M} UTC"
            dns = [f"DNS check of {when}: {finding['message']}" for finding in self.findings]
            dns = dns or [f"DNS check of {when}: nothing against enforce"]
        if self.failures is None:
            reports = f"TLS reports: none over the last {self.days} days, so nothing shows how senders fare"
        else:
            reports = (f"TLS reports of the last {self.days} days: {self.failures.sts_failed_session_count} failed "
                       f"MTA-STS sessions, {self.failures.successful_session_count} successful")
        return [*dns, reports]


ENFORCE_EVIDENCE_DAYS = 30


def enforce_evidence(session: Session, domain: Domain, policy: Policy,
                     days: int = ENFORCE_EVIDENCE_DAYS) -> EnforceEvidence:
    """Gather what the confirmation of a switch to enforce (with `policy`) shows, for pages, API and CLI alike."""
    checked = latest_check(session, domain)
    findings = against_enforce(checked.findings, [mx.host for mx in checked.mx_hosts],
                               policy.mx_patterns) if checked else []
    return EnforceEvidence(checked, findings, failure_figures(session, [domain], days).get(domain.id), days)
