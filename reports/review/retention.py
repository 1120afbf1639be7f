"""Deleting old reports: their policy blocks, failure details and links go with them (ON DELETE
CASCADE); the daily rollups stay, so dashboards keep their history. The failure rollups' sending IPs,
most of the rollups' room, are kept for a shorter time: older days keep their failures by result type,
MX and organisation, without the IP."""

from collections import Counter
from datetime import date, datetime, timedelta

from sqlalchemy import delete, literal_column, select
from sqlalchemy.orm import Session

from reports.models import ROLLUP_CEILING, DailyFailure, Report
from reports.storage import add_failures

BATCH = 1000  # reports or rollup rows a transaction: each commit releases the locks, a stop loses one batch at most

_KEPT = ("domain_id", "day", "policy_type", "result_type", "mx_host", "organization_name")


def prune_reports(session: Session, before: datetime, batch: int = BATCH) -> int:
    """Delete the reports whose period ended before `before`, a batch per transaction; how many."""
    deleted = 0
    while ids := session.scalars(select(Report.id).where(Report.end_datetime < before).order_by(Report.id)
                                 .limit(batch)).all():
        session.execute(delete(Report).where(Report.id.in_(ids)))
        session.commit()
        deleted += len(ids)
    return deleted


def ip_rollup_start(today: date, days: int) -> date:
    """The first day whose failure rollups still name the sending IP, when they are kept `days` days."""
    return today - timedelta(days=days)


def prune_ip_rollups(session: Session, before: date, batch: int = BATCH) -> int:
    """Fold the failure rollup rows of days before `before` that name a sending IP into the rows without
    one (sending_ip empty, shard 0) of the same domain, day, policy type, result type, MX and organisation,
    a batch per transaction; how many rows were removed.

    The rows are deleted first and their counts added back from what the DELETE returned, so a report
    adding to them meanwhile is counted either in what was deleted or after it, never lost."""
    removed = 0
    # A literal '' rather than a parameter: PostgreSQL uses the partial index only when it can prove its predicate.
    old = (select(DailyFailure.id).where(DailyFailure.day < before, DailyFailure.sending_ip != literal_column("''"))
           .limit(batch))
    while rows := session.execute(
        delete(DailyFailure).where(DailyFailure.id.in_(old.scalar_subquery()))
        .returning(*(getattr(DailyFailure, name) for name in _KEPT), DailyFailure.failed_session_count),
        execution_options={"synchronize_session": False},
    ).all():
        folded: Counter = Counter()
        for *key, count in rows:
            folded[tuple(key)] += count
        add_failures(session, [dict(zip(_KEPT, key, strict=True)) | {
            "sending_ip": "", "shard": 0, "failed_session_count": min(count, ROLLUP_CEILING)}
            for key, count in sorted(folded.items())])
        session.commit()
        removed += len(rows)
    return removed
