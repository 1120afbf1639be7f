"""Stored findings: the findings of the last days, kept in a table so that pages and alerts read the open ones
with one indexed query instead of correlating the reports again.

`refresh_findings` correlates every hosted domain's reports of the last RECENT days (`load_findings`)
and brings the table in line: a finding seen again is updated in place (its key is the domain, the
kind and the subject), a new one is added, and an open one no longer found is resolved. Refreshes may
run at once (the alerts' timer, `flask report findings --refresh`): a finding two of them add at the
same moment is stored once, by the unique index on open keys.
"""

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import JSON, ForeignKey, Index, String, Text, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from reports.review.finding_queries import load_findings
from reports.review.findings import KINDS, Finding
from stspolicy.extensions import UTCDateTime, db
from stspolicy.policies.models import Domain

# Reports cover a UTC day and arrive within a day or so after it: a finding clears once three days of
# reports no longer show it, which a sender one day late does not make it do.
RECENT = timedelta(days=3)
KEEP_RESOLVED = timedelta(days=90)


class StoredFinding(db.Model):
    """A finding as the refreshes saw it, from `first_seen` to `last_seen`, until it was `resolved_at`.

    `since` and `until` are the finding's: the reports that show it; `since` keeps the earliest any
    refresh saw, though the window of the latest refresh begins later.
    """

    __tablename__ = "review_finding"
    __table_args__ = (
        Index("uq_review_finding_open_key", "domain_id", "kind", "subject", unique=True,
              postgresql_where=text("resolved_at IS NULL"), sqlite_where=text("resolved_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(320))  # Finding.subject: an MX host and a result type at most
    side: Mapped[str] = mapped_column(String(8))
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    evidence: Mapped[dict] = mapped_column(JSON)
    fix: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def refresh_findings(session: Session, now: datetime) -> dict[str, int]:
    """Store the findings of every hosted domain's reports of the last RECENT days; counts of what changed."""
    ids = dict(session.execute(select(Domain.name, Domain.id)).all())
    found = load_findings(session, list(ids), since=now - RECENT, until=now)
    stored = {(row.domain_id, row.kind, row.subject): row for row in session.scalars(
        select(StoredFinding).where(StoredFinding.resolved_at.is_(None)))}
    added, changed, seen = [], [], []
    for finding in found:
        key = (ids[finding.domain], finding.kind, finding.subject)
        values = {"side": finding.side, "until": finding.until, "evidence": dict(finding.evidence),
                  "fix": finding.fix}
        row = stored.pop(key, None)
        if row is None:
            added.append(values | {"domain_id": key[0], "kind": key[1], "subject": key[2], "since": finding.since,
                                   "first_seen": now, "last_seen": now})
            continue
        seen.append(row.id)
        values["since"] = min(row.since, finding.since)
        if any(getattr(row, name) != value for name, value in values.items()):
            changed.append(values | {"id": row.id})
    if added:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        session.execute(insert(StoredFinding).on_conflict_do_nothing(
            index_elements=["domain_id", "kind", "subject"], index_where=StoredFinding.resolved_at.is_(None)), added)
    if changed:
        session.execute(update(StoredFinding), changed)
    _set(session, seen, last_seen=now)
    _set(session, [row.id for row in stored.values()], resolved_at=now)
    session.execute(delete(StoredFinding).where(StoredFinding.resolved_at < now - KEEP_RESOLVED)
                    .execution_options(synchronize_session=False))
    session.commit()
    return {"open": len(found), "new": len(added), "resolved": len(stored)}


def _set(session: Session, ids: list[int], **values) -> None:
    if ids:
        session.execute(update(StoredFinding).where(StoredFinding.id.in_(ids)).values(**values)
                        .execution_options(synchronize_session=False))


def open_findings(session: Session, domain_names: Collection[str]) -> list[Finding]:
    """The open findings of the domains named, as the last refresh stored them, by domain, kind and time.

    The caller names only domains the user may see (`visible_domains`, `domain_for_user`).
    """
    rows = session.execute(
        select(Domain.name, StoredFinding)
        .join(StoredFinding, StoredFinding.domain_id == Domain.id)
        .where(Domain.name.in_(list(domain_names)), StoredFinding.resolved_at.is_(None))
    )
    found = [Finding(row.kind, name, row.side, row.since, row.until, row.evidence, row.fix) for name, row in rows]
    return sorted(found, key=lambda f: (f.domain, KINDS.index(f.kind), f.since, f.subject))
