"""The weekly digest per user: per domain, sessions and success rate by policy type, the top failure
causes, the changes made (audit log) and the open incidents; plain text, HTML and webhook JSON.

The week ends at ALERT_DIGEST_WEEKDAY, ALERT_DIGEST_HOUR (UTC); the first run after that
queues it, once per user and channel.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from reports.alerts.facts import failure_details, mx_users, recent_checks, session_totals
from reports.alerts.incidents import channels_of, incidents_for
from reports.alerts.messages import digest_payload, render_digest
from reports.alerts.models import DIGEST, EMAIL, PENDING, Delivery
from reports.alerts.rules import POLICY_LABELS, percent
from reports.alerts.settings import AlertSettings
from reports.alerts.subscriptions import Recipient, recipients
from stspolicy.base.audit import MEMBER_VISIBLE_PREFIXES, AuditEvent, describe
from stspolicy.policies.models import Domain
from stspolicy.policies.queries import current_versions, list_domains

MAX_DOMAINS_DETAILED = 100


@dataclass
class DomainWeek:
    name: str
    mode: str
    sessions: dict[str, tuple[int, int]]  # policy type -> (successful, failed)
    causes: list[tuple[str, str, int]]  # (result type, MX, failed sessions), the most first
    changes: list[str]
    incidents: list[str]

    @property
    def failed(self) -> int:
        return sum(failed for _, failed in self.sessions.values())

    @property
    def quiet(self) -> bool:
        return not (self.failed or self.changes or self.incidents)

    def session_lines(self) -> list[str]:
        return [f"{POLICY_LABELS.get(kind, kind)}: {ok + failed:,} sessions, {percent(ok, ok + failed)} successful"
                for kind, (ok, failed) in sorted(self.sessions.items())]

    def as_dict(self) -> dict:
        sessions = {kind: {"successful": ok, "failed": failed} for kind, (ok, failed) in self.sessions.items()}
        causes = [{"result_type": r, "mx_host": mx, "failed_sessions": n} for r, mx, n in self.causes]
        return {"domain": self.name, "mode": self.mode, "sessions": sessions, "failure_causes": causes,
                "changes": self.changes, "open_incidents": self.incidents}


@dataclass
class Digest:
    start: datetime
    end: datetime
    domains: list[DomainWeek]
    base_url: str
    open_incidents: int = 0
    quiet: list[str] = field(default_factory=list)  # domains with nothing to say, named only

    @property
    def detailed(self) -> list[DomainWeek]:
        return [row for row in self.domains if not row.quiet][:MAX_DOMAINS_DETAILED]

    @property
    def not_detailed(self) -> int:
        return len([row for row in self.domains if not row.quiet]) - len(self.detailed)


def week_end(now: datetime, settings: AlertSettings) -> datetime:
    """The latest digest boundary at or before `now`."""
    boundary = now.replace(hour=settings.digest_hour, minute=0, second=0, microsecond=0)
    boundary -= timedelta(days=(boundary.weekday() - settings.digest_weekday) % 7)
    return boundary if boundary <= now else boundary - timedelta(days=7)


def build_digests(session: Session, end: datetime, settings: AlertSettings,
                  audience: list[Recipient]) -> dict[int, Digest]:
    """The digest of the week before `end` for each user of `audience`, keyed by user id."""
    start = end - timedelta(days=7)
    names = set().union(*(r.visible for r in audience)) if audience else set()
    domains = [d for d in list_domains(session) if d.name in names]
    if not domains:
        return {}
    versions = current_versions(session, domains)
    users = mx_users(domains, versions, recent_checks(session, domains, end))
    totals = session_totals(session, start.date(), domains, users, until=end.date())
    details = failure_details(session, start, domains, users, until=end)
    events = _events(session, domains, start, end)
    digests = {}
    for recipient in audience:
        open_incidents = incidents_for(session, recipient, open_only=True, limit=1000)
        by_domain: dict[str, list[str]] = {}
        for incident, rows in open_incidents:
            for row in rows:
                by_domain.setdefault(row.domain_name, []).append(f"#{incident.id} {incident.title}")
        rows = []
        for domain in domains:
            if domain.name not in recipient.visible:
                continue
            sessions: dict[str, list[int]] = {}
            for (_, kind), (ok, failed) in totals.get(domain.name, {}).items():
                counts = sessions.setdefault(kind, [0, 0])
                counts[0], counts[1] = counts[0] + ok, counts[1] + failed
            causes = Counter()
            for (_, result_type, mx, _), count in details.get(domain.name, {}).items():
                causes[(result_type, mx)] += count
            rows.append(DomainWeek(
                domain.name, versions[domain.id].mode, {k: tuple(v) for k, v in sessions.items()},
                [(r, mx, n) for (r, mx), n in causes.most_common(3)],
                [line for action, line in events.get(domain.id, []) if recipient.user.is_admin
                 or action.startswith(MEMBER_VISIBLE_PREFIXES)],
                by_domain.get(domain.name, [])))
        rows.sort(key=lambda row: (-row.failed, row.name))
        digests[recipient.user.id] = Digest(start, end, rows, settings.base_url, len(open_incidents),
                                            [row.name for row in rows if row.quiet])
    return digests


def _events(session: Session, domains: list[Domain], start: datetime, end: datetime) -> dict[int, list]:
    found: dict[int, list] = {}
    for event in session.scalars(select(AuditEvent).where(
            AuditEvent.domain_id.in_([d.id for d in domains]), AuditEvent.created_at >= start,
            AuditEvent.created_at < end).order_by(AuditEvent.id)):
        found.setdefault(event.domain_id, []).append(
            (event.action, f"{event.created_at:%Y-%m-%d %H:%M} {event.actor} {describe(event.action, event.detail)}"))
    return found


def queue_digests(session: Session, now: datetime, settings: AlertSettings) -> int:
    """Queue the digest of the week that ended last, for each user who wants it and did not get it."""
    end = week_end(now, settings)
    audience = [r for r in recipients(session) if r.digest and r.visible]
    keys = {r.user.id: [(channel, f"{DIGEST}:{end:%Y-%m-%d}:{r.user.id}:{target}", hook)
                        for channel, target, hook in channels_of(r, settings)] for r in audience}
    queued = set(session.scalars(select(Delivery.dedupe_key).where(
        Delivery.dedupe_key.in_([key for found in keys.values() for _, key, _ in found]))))
    audience = [r for r in audience if any(key not in queued for _, key, _ in keys[r.user.id])]
    if not audience:
        return 0
    added = 0
    for user_id, digest in build_digests(session, end, settings, audience).items():
        recipient = next(r for r in audience if r.user.id == user_id)
        subject, text, html = render_digest(digest, recipient.user.language)
        for channel, key, hook in keys[user_id]:
            if key in queued:
                continue
            session.add(Delivery(
                dedupe_key=key, user_id=user_id, webhook_id=hook.id if hook else None, event=DIGEST, channel=channel,
                recipient=hook.url if hook else recipient.user.email, subject=subject, body_text=text,
                body_html=html if channel == EMAIL else None,
                payload=digest_payload(digest, text, hook.payload_format) if hook else None,
                state=PENDING, attempts=0, next_attempt_at=now, created_at=now))
            added += 1
    session.commit()
    return added
