"""One run of the alerts: store the findings, evaluate every rule, update the incidents, queue and send the notices.

Runs hold the lease (`lease`), so several hosts may run it from their timers at once; every
step commits what it did, so a run cut short leaves nothing half done: the next one goes on.
"""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from reports.alerts import lease
from reports.alerts.channels import Mailer, WebhookPoster
from reports.alerts.digest import queue_digests
from reports.alerts.facts import gather
from reports.alerts.incidents import queue_notices, reconcile
from reports.alerts.outbox import send_due
from reports.alerts.refusals import counter_totals, record_refusals, refusal_signals
from reports.alerts.rules import Signal, evaluate, merge
from reports.alerts.settings import AlertSettings
from reports.review.finding_store import refresh_findings
from stspolicy.policies.queries import list_domains


@dataclass
class RunOutcome:
    ran: bool  # False: another run holds the lease
    findings: dict[str, int] = field(default_factory=dict)
    signals: int = 0
    incidents: dict[str, int] = field(default_factory=dict)
    queued: int = 0
    digests: int = 0
    sent: int = 0
    failed: int = 0
    unavailable: list[str] = field(default_factory=list)

    def line(self) -> str:
        if not self.ran:
            return "another run holds the lease: nothing done"
        changed = ", ".join(f"{count} {what}" for what, count in self.incidents.items())
        found = ", ".join(f"{count} {what}" for what, count in self.findings.items())
        line = (f"findings: {found}; {self.signals} signals; incidents: {changed}; queued {self.queued} notices and "
                f"{self.digests} digests; sent {self.sent}, failed {self.failed}")
        return line + ("; not sent now: " + "; ".join(self.unavailable) if self.unavailable else "")


def signals_now(session: Session, now: datetime, settings: AlertSettings) -> list[Signal]:
    """Every signal of every enabled rule, one per cause."""
    signals = [signal for facts in gather(session, list_domains(session), now)
               for signal in evaluate(facts, now, settings.base_url)]
    return merge(signals + refusal_signals(session, now, settings))


def run(session: Session, now: datetime, settings: AlertSettings, *, digest: bool = True,
        mailer: Mailer | None = None, poster: WebhookPoster | None = None,
        holder: str | None = None) -> RunOutcome:
    holder = holder or lease.holder_name()
    if not lease.claim(session, holder, now, settings.lease_seconds):
        return RunOutcome(ran=False)
    try:
        if settings.metrics_dir is not None and settings.metrics_dir.is_dir():
            record_refusals(session, counter_totals(settings.metrics_dir), now.date())
        findings = refresh_findings(session, now)
        signals = signals_now(session, now, settings)
        outcome = RunOutcome(ran=True, findings=findings, signals=len(signals))
        outcome.incidents = reconcile(session, signals, now, settings)
        outcome.queued = queue_notices(session, now, settings)
        if digest:
            outcome.digests = queue_digests(session, now, settings)
        lease.claim(session, holder, now, settings.lease_seconds)  # renewed before the slow part
        sent = send_due(session, now, settings, mailer=mailer, poster=poster)
        outcome.sent, outcome.failed, outcome.unavailable = sent.sent, sent.failed, sent.unavailable
        return outcome
    finally:
        session.rollback()
        lease.release(session, holder)
