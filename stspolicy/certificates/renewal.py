"""When a certificate needs renewing, and when to try again after a failure. Pure."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

FIRST_RETRY = timedelta(minutes=15)
LONGEST_RETRY = timedelta(days=1)


@dataclass(frozen=True)
class IssuedCertificate:
    serial: str
    not_before: datetime
    not_after: datetime


def issued_certificate(fullchain_pem: bytes) -> IssuedCertificate:
    """Serial and validity of the leaf, the first certificate of a chain."""
    leaf = x509.load_pem_x509_certificate(fullchain_pem)
    return IssuedCertificate(f"{leaf.serial_number:x}", leaf.not_valid_before_utc, leaf.not_valid_after_utc)


def renewal_due(not_before: datetime, not_after: datetime, now: datetime) -> bool:
    """Renew in the last third of the lifetime: 30 days before expiry for 90-day certificates."""
    return now >= not_after - (not_after - not_before) / 3


def retry_at(last_attempt: datetime, failures: int) -> datetime:
    """Back off after failures (15 min, 30, 1 h, ... at most a day), within CA rate limits."""
    if failures <= 0:
        return last_attempt
    return last_attempt + min(FIRST_RETRY * 2 ** (failures - 1), LONGEST_RETRY)
