"""The ACME account, the certificate of each host we serve and the http-01 challenges being answered."""


from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stspolicy.extensions import UTCDateTime, db, utcnow


class Certificate(db.Model):
    """The ACME certificate of one host we serve (`mta-sts.<domain>` or an extra host), and its last attempt.

    The chain and the private key (sealed with KEY_ENCRYPTION_KEYS) live here; every serving
    node writes them into the file nginx reads, CERTS_DIR/<host>.pem (`flask node sync`).
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
    fullchain_pem: Mapped[str | None] = mapped_column(Text)
    key_sealed: Mapped[str | None] = mapped_column(Text)


class AcmeAccount(db.Model):
    """The account at one ACME directory: its key, sealed with KEY_ENCRYPTION_KEYS (the account is the key)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    directory_url: Mapped[str] = mapped_column(String(500), unique=True)
    key_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AcmeChallenge(db.Model):
    """An http-01 challenge being answered: every node serves `validation` at /.well-known/acme-challenge/<token>."""

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(255), unique=True)
    validation: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
