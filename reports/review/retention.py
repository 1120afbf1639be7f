"""Deleting old reports: their policy blocks, failure details and links go with them (ON DELETE
CASCADE); the daily rollups stay, so dashboards keep their history."""

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from reports.models import Report

BATCH = 1000  # reports per transaction: each commit releases the locks, and a stop loses one batch at most


def prune_reports(session: Session, before: datetime, batch: int = BATCH) -> int:
    """Delete the reports whose period ended before `before`, a batch per transaction; how many."""
    deleted = 0
    while ids := session.scalars(select(Report.id).where(Report.end_datetime < before).order_by(Report.id)
                                 .limit(batch)).all():
        session.execute(delete(Report).where(Report.id.in_(ids)))
        session.commit()
        deleted += len(ids)
    return deleted
