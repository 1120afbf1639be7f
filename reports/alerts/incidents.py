"""Incidents from signals, and the notices they owe: one when an incident opens, one when it clears.

A signal whose key has an open incident updates it (no new notice: repeats are suppressed);
an open incident whose signal stayed away for ALERT_RESOLVE_AFTER_MINUTES is resolved. Each
recipient's notice names only the domains they receive; a recipient is told it cleared once
none of their domains is touched any more.
"""

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from reports.alerts.messages import (
    MAX_DOMAINS_LISTED,
    DomainView,
    Notice,
    domain_links,
    notice_payload,
    render_notice,
)
from reports.alerts.models import EMAIL, OPENED, PENDING, RESOLVED, WEBHOOK, Delivery, Incident, IncidentDomain
from reports.alerts.rules import REPORTS_REFUSED, RULES, Signal
from reports.alerts.settings import AlertSettings
from reports.alerts.subscriptions import Recipient, recipients
from stspolicy.policies.models import Domain

RECENT_DAYS = 7  # resolved incidents still owed a notice are looked at this long


def reconcile(session: Session, signals: list[Signal], now: datetime, settings: AlertSettings) -> dict[str, int]:
    """Open, update and resolve incidents to match `signals`; returns counts of what changed."""
    ids = dict(session.execute(select(Domain.name, Domain.id)).all())
    open_incidents = {incident.key: incident for incident in session.scalars(
        select(Incident).where(Incident.resolved_at.is_(None)).options(selectinload(Incident.domains)))}
    hold = timedelta(minutes=settings.resolve_after_minutes)
    counts = {"opened": 0, "updated": 0, "resolved": 0}
    for signal in signals:
        incident = open_incidents.pop(signal.key, None)
        if incident is None:
            incident = Incident(rule=signal.rule, subject=signal.subject, key=signal.key, opened_at=now,
                                since=signal.since, domains=[])
            session.add(incident)
            counts["opened"] += 1
        else:
            counts["updated"] += 1
        incident.title, incident.lines, incident.evidence, incident.fix = (
            signal.title, list(signal.lines), signal.evidence, signal.fix)
        incident.since, incident.last_seen_at = min(incident.since, signal.since), now
        rows = {row.domain_name: row for row in incident.domains}
        for part in signal.parts:
            row = rows.pop(part.domain, None)
            if row is None:
                row = IncidentDomain(domain_name=part.domain, domain_id=ids.get(part.domain), since=part.since)
                incident.domains.append(row)
            row.lines, row.evidence, row.last_seen_at, row.resolved_at = list(part.lines), part.evidence, now, None
        for row in rows.values():
            if row.resolved_at is None and now - row.last_seen_at >= hold:
                row.resolved_at = now
    for incident in open_incidents.values():
        if now - incident.last_seen_at >= hold:
            incident.resolved_at = now
            for row in incident.domains:
                row.resolved_at = row.resolved_at or now
            counts["resolved"] += 1
    session.commit()
    return counts


def queue_notices(session: Session, now: datetime, settings: AlertSettings) -> int:
    """Queue the notices that open and recently resolved incidents owe; returns how many were queued."""
    incidents = list(session.scalars(
        select(Incident).where((Incident.resolved_at.is_(None)) | (Incident.resolved_at >= now - timedelta(
            days=RECENT_DAYS))).options(selectinload(Incident.domains)).order_by(Incident.id)))
    if not incidents:
        return 0
    queued = set(session.scalars(select(Delivery.dedupe_key).where(
        Delivery.incident_id.in_([incident.id for incident in incidents]))))
    audience = recipients(session)
    added = 0
    for incident in incidents:
        spec = RULES.get(incident.rule) or REPORTS_REFUSED
        for recipient in audience:
            rows = _visible(incident, recipient)
            if rows is None:
                continue
            active = incident.resolved_at is None and (not incident.domains or any(r.resolved_at is None for r in rows))
            for channel, target, hook in channels_of(recipient, settings):
                opened_key = f"{incident.id}:{OPENED}:{recipient.user.id}:{target}"
                resolved_key = f"{incident.id}:{RESOLVED}:{recipient.user.id}:{target}"
                if active and opened_key not in queued:
                    event, key = OPENED, opened_key
                elif not active and opened_key in queued and resolved_key not in queued and spec.resolution_notice:
                    event, key = RESOLVED, resolved_key
                else:
                    continue
                notice = _notice(incident, event, rows, settings, now)
                subject, text, html = render_notice(notice, recipient.user.language)
                session.add(Delivery(
                    dedupe_key=key, incident_id=incident.id, user_id=recipient.user.id,
                    webhook_id=hook.id if hook else None, event=event, channel=channel,
                    recipient=hook.url if hook else recipient.user.email, subject=subject, body_text=text,
                    body_html=html if channel == EMAIL else None,
                    payload=notice_payload(notice, text, hook.payload_format) if hook else None,
                    state=PENDING, attempts=0, next_attempt_at=now, created_at=now))
                queued.add(key)
                added += 1
    session.commit()
    return added


def _visible(incident: Incident, recipient: Recipient) -> list[IncidentDomain] | None:
    """The incident's domains this recipient receives, or None when they receive nothing of it."""
    if not recipient.alerts and not incident.domains:
        return None
    if not incident.domains:  # about the intake as a whole
        return [] if recipient.user.is_admin and recipient.alerts else None
    rows = [row for row in incident.domains if row.domain_name in recipient.domains]
    return rows or None


def channels_of(recipient: Recipient, settings: AlertSettings):
    """(channel, target key, webhook) for each way this recipient is reached."""
    if settings.smtp is not None:
        yield EMAIL, EMAIL, None
    for hook in recipient.webhooks:
        yield WEBHOOK, f"{WEBHOOK}{hook.id}", hook


def _notice(incident: Incident, event: str, rows: list[IncidentDomain], settings: AlertSettings,
            now: datetime) -> Notice:
    shown = rows if event == RESOLVED else [row for row in rows if row.resolved_at is None] or rows
    return Notice(
        event=event, incident_id=incident.id, rule=incident.rule, subject=incident.subject, title=incident.title,
        since=incident.since, opened_at=incident.opened_at, resolved_at=incident.resolved_at or (
            now if event == RESOLVED else None),
        lines=list(incident.lines), evidence=incident.evidence, fix=incident.fix,
        domains=[DomainView(row.domain_name, row.since, list(row.lines), row.evidence, row.resolved_at,
                            domain_links(settings.base_url, incident.rule, row.domain_name, row.evidence))
                 for row in shown[:MAX_DOMAINS_LISTED]],
        hidden_domains=max(0, len(shown) - MAX_DOMAINS_LISTED), alerts_url=f"{settings.base_url}/alerts",
    )


def incidents_for(session: Session, recipient: Recipient | None, *, limit: int = 100,
                  open_only: bool = False) -> list[tuple[Incident, list[IncidentDomain]]]:
    """Open and recent incidents, newest first, each with the domains `recipient` may see (all for None)."""
    query = select(Incident).options(selectinload(Incident.domains)).order_by(
        Incident.resolved_at.is_not(None), Incident.opened_at.desc(), Incident.id.desc())
    if open_only:
        query = query.where(Incident.resolved_at.is_(None))
    found = []
    for incident in session.scalars(query.limit(limit * 4 if recipient else limit)):
        if recipient is None:
            found.append((incident, list(incident.domains)))
            continue
        rows = [row for row in incident.domains if row.domain_name in recipient.visible]
        if rows or (not incident.domains and recipient.user.is_admin):
            found.append((incident, rows))
        if len(found) >= limit:
            break
    return found
