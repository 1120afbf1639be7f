"""The ACME certificate of each host we serve."""


from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stspolicy.extensions import UTCDateTime, db


class Certificate(db.Model):
    """The ACME certificate of one host we serve (`mta-sts.<domain>` or an extra host), and its last attempt.

    The key and chain live in a file nginx reads (CERTS_DIR/<host>.pem); this row is what
    the CLI, the UI and the metrics show, and when to try again after a failure.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(253), unique=True)
    serial: Mapped[str | None] = mapped_column(String(64))
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(default=0)
