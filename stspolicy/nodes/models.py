"""The serving revision, and what each serving node last applied of it."""

from datetime import datetime

from sqlalchemy import BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stspolicy.extensions import UTCDateTime, db


class ServingState(db.Model):
    """One row: a counter of what nodes serve, raised by triggers of migration 0014.

    Any committed change of a domain, a policy version, a certificate's key or chain or an
    ACME challenge raises `revision` in its own transaction, and on PostgreSQL notifies
    channel `serving_changed`. Writers queue on this row, so revisions are committed in
    order: whoever reads revision R sees every change up to R.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)


class ServingNode(db.Model):
    """A host that serves policies, certificates and ACME challenges from files its `flask node sync` writes."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    applied_revision: Mapped[int] = mapped_column(BigInteger, default=0)  # its files say what this revision said
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when it last wrote a change
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)  # its last sync or heartbeat
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    policies: Mapped[int] = mapped_column(default=0)
    certificates: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)  # of its last sync; None once one succeeds
