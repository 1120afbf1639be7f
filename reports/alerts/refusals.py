"""Reports refused by the intake, per day, taken from its Prometheus counters.

The intake counts refusals only in /metrics (stspolicy.base.counters). Under gunicorn those live in
PROMETHEUS_MULTIPROC_DIR, which every process writes; each run reads the totals there and
adds what grew since the last run to today's row. Counters restart from zero when the
service does, so a total below the last one read is all new.
"""

from datetime import date, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reports.alerts.models import RefusalCounter, RefusalDay
from reports.alerts.rules import Signal, midnight, refusal_signal
from reports.alerts.settings import AlertSettings
from reports.models import Report

REFUSED_SAMPLE = "stspolicy_reports_refused_total"
NOT_COUNTED = {"unhosted"}  # reports about domains not hosted here are no fault of the intake


def counter_totals(metrics_dir: Path) -> dict[tuple[str, str], int]:
    """The refusal counter's totals by (channel, reason), summed over every process's file."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))
    totals: dict[tuple[str, str], int] = {}
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == REFUSED_SAMPLE:
                key = (sample.labels["channel"], sample.labels["reason"])
                totals[key] = totals.get(key, 0) + int(sample.value)
    return totals


def record_refusals(session: Session, totals: dict[tuple[str, str], int], day: date) -> None:
    """Add to `day` what each counter grew by since the last reading."""
    last = {(row.channel, row.reason): row for row in session.scalars(select(RefusalCounter))}
    for (channel, reason), value in totals.items():
        seen = last.get((channel, reason))
        grown = value - seen.value if seen and value >= seen.value else value
        if seen is None:
            session.add(RefusalCounter(channel=channel, reason=reason, value=value))
        else:
            seen.value = value
        if grown:
            row = session.get(RefusalDay, (day, channel, reason))
            if row is None:
                session.add(RefusalDay(day=day, channel=channel, reason=reason, refused_count=grown))
            else:
                row.refused_count += grown
    session.commit()


def refusal_signals(session: Session, now: datetime, settings: AlertSettings) -> list[Signal]:
    """The reports-refused signal over today and yesterday, if refusals are that many."""
    since = now.date() - timedelta(days=1)
    refused: dict[tuple[str, str], int] = {}
    for row in session.scalars(select(RefusalDay).where(RefusalDay.day >= since)):
        if row.reason not in NOT_COUNTED:
            refused[(row.channel, row.reason)] = refused.get((row.channel, row.reason), 0) + row.refused_count
    stored = session.scalar(select(func.count(Report.id)).where(Report.received_at >= midnight(since)))
    found = refusal_signal(refused, stored, settings.refused_percent, settings.refused_min_count, midnight(since))
    return [found] if found else []
