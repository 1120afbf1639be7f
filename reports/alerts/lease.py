"""A lease row claimed by one atomic UPDATE: of the runs that start at once on several hosts, one
evaluates the rules and sends; the others find it taken and stop. A crashed holder's lease
expires after ALERT_LEASE_SECONDS."""

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from reports.alerts.models import AlertLease

RUN = "run"
_EXPIRED = datetime(1970, 1, 1, tzinfo=UTC)


def holder_name() -> str:
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def claim(session: Session, holder: str, now: datetime, seconds: int, name: str = RUN) -> bool:
    """Take or renew the lease; False when another holder has it until later than `now`."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(AlertLease).values(name=name, holder="", expires_at=_EXPIRED).on_conflict_do_nothing())
    taken = session.execute(
        update(AlertLease)
        .where(AlertLease.name == name, (AlertLease.expires_at <= now) | (AlertLease.holder == holder))
        .values(holder=holder, expires_at=now + timedelta(seconds=seconds))
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    session.commit()
    return taken


def release(session: Session, holder: str, name: str = RUN) -> None:
    session.execute(update(AlertLease).where(AlertLease.name == name, AlertLease.holder == holder)
                    .values(expires_at=_EXPIRED).execution_options(synchronize_session=False))
    session.commit()
