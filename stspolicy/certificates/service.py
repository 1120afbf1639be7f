"""Certificates for every host we serve: issue the missing, renew the due, drop the unwanted.

The hosts are `mta-sts.<domain>` for each hosted domain plus ACME_EXTRA_HOSTS (the admin
and report host). Each certificate is one file, CERTS_DIR/<host>.pem, holding the key and
the full chain, replaced atomically so that nginx, which loads it by SNI name on every
handshake, never pairs a new certificate with an old key. No reload is needed.
"""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from stspolicy.atomicfile import fsync_directory, write_atomically
from stspolicy.certificates.acme import AcmeIssuer, IssueError
from stspolicy.certificates.models import Certificate
from stspolicy.certificates.renewal import issued_certificate, renewal_due, retry_at
from stspolicy.policies.models import Domain
from stspolicy.policies.names import POLICY_HOST_PREFIX, InvalidName, normalize_domain
from stspolicy.settings import AppSettings


class CertificateError(ValueError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class CertificateState:
    host: str
    state: str  # "valid", "due" (for renewal), "expired" or "missing"
    not_after: datetime | None
    days_left: float | None
    failures: int
    last_error: str | None
    next_attempt: datetime | None
    last_attempt: datetime | None


@dataclass(frozen=True)
class IssueOutcome:
    host: str
    result: str  # "issued", "failed", "waiting" (backing off) or "removed"
    detail: str


def acme_issuer(settings: AppSettings) -> AcmeIssuer:
    """The issuer configured by ACME_* settings; CertificateError when ACME is not configured."""
    acme = settings.certificates
    if not acme.acme_directory_url:
        raise CertificateError("ACME_DIRECTORY_URL is not set: certificates are not managed here")
    return AcmeIssuer(acme.acme_directory_url, acme.acme_account_key_file, acme.acme_webroot,
                      email=acme.acme_email, ca_bundle=acme.acme_ca_bundle)


def wanted_hosts(session: Session, settings: AppSettings) -> list[str]:
    hosts = [POLICY_HOST_PREFIX + name for name in session.scalars(select(Domain.name).order_by(Domain.name))]
    return hosts + [host for host in settings.certificates.acme_extra_hosts if host not in hosts]


def host_for(session: Session, settings: AppSettings, name: str) -> str:
    """The served host meant by `name`: a hosted domain, its mta-sts host, or an extra host."""
    wanted = wanted_hosts(session, settings)
    try:
        name = normalize_domain(name)
    except InvalidName as error:
        raise CertificateError(str(error)) from None
    for host in (POLICY_HOST_PREFIX + name, name):
        if host in wanted:
            return host
    raise CertificateError(f"{name} is neither a hosted domain nor a host in ACME_EXTRA_HOSTS")


def certificate_states(session: Session, settings: AppSettings, now: datetime) -> list[CertificateState]:
    certs_dir = _certs_dir(settings)
    rows = {row.host: row for row in session.scalars(select(Certificate))}
    return [_state(certs_dir, host, rows.get(host), now) for host in wanted_hosts(session, settings)]


def certificate_state(session: Session, settings: AppSettings, host: str, now: datetime) -> CertificateState:
    """The certificate of one served host, e.g. `mta-sts.<domain>` for the domain's page."""
    return _state(_certs_dir(settings), host, session.scalar(select(Certificate).where(Certificate.host == host)), now)


def _certs_dir(settings: AppSettings) -> Path:
    if settings.certificates.certs_dir is None:
        raise CertificateError("CERTS_DIR is not set: certificates are not managed here")
    return settings.certificates.certs_dir


def issue_certificate(session: Session, settings: AppSettings, issuer: AcmeIssuer, host: str,
                      now: datetime) -> IssueOutcome:
    """Request a certificate for `host` now, whatever its state; record the outcome."""
    row = session.scalar(select(Certificate).where(Certificate.host == host)) or Certificate(host=host, failures=0)
    session.add(row)
    row.last_attempt_at = now
    try:
        issued = issuer.issue(host)
        facts = issued_certificate(issued.fullchain_pem)
        _install(certificate_path(_certs_dir(settings), host), issued.key_pem + issued.fullchain_pem)
    except (IssueError, OSError) as error:
        row.failures += 1
        row.last_error = str(error)
        session.commit()
        return IssueOutcome(host, "failed", str(error))
    row.serial, row.not_before, row.not_after = facts.serial, facts.not_before, facts.not_after
    row.issued_at, row.failures, row.last_error = now, 0, None
    session.commit()
    return IssueOutcome(host, "issued", f"valid until {facts.not_after:%Y-%m-%d %H:%M} UTC")


def renew_certificates(session: Session, settings: AppSettings, issuer: AcmeIssuer,
                       now: datetime) -> list[IssueOutcome]:
    """Issue what is missing or due (respecting the back-off after failures); remove unwanted ones."""
    outcomes = []
    for state in certificate_states(session, settings, now):
        if state.state == "valid":
            continue
        if state.next_attempt and now < state.next_attempt:
            outcomes.append(IssueOutcome(state.host, "waiting", f"after {state.failures} failure(s), "
                                    f"next attempt at {state.next_attempt:%Y-%m-%d %H:%M} UTC"))
            continue
        outcomes.append(issue_certificate(session, settings, issuer, state.host, now))
    wanted = set(wanted_hosts(session, settings))
    for row in session.scalars(select(Certificate).where(Certificate.host.not_in(wanted))).all():
        certificate_path(_certs_dir(settings), row.host).unlink(missing_ok=True)
        session.delete(row)
        outcomes.append(IssueOutcome(row.host, "removed", "no longer served"))
    session.commit()
    return outcomes


def certificate_path(certs_dir: Path, host: str) -> Path:
    return certs_dir / f"{host}.pem"


def _install(path: Path, pem: bytes) -> None:
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    write_atomically(path, pem, 0o640)  # nginx workers read it through the directory's group
    fsync_directory(path.parent)


def _state(certs_dir: Path, host: str, row: Certificate | None, now: datetime) -> CertificateState:
    failures = row.failures if row else 0
    next_attempt = retry_at(row.last_attempt_at, failures) if row and row.last_attempt_at and failures else None
    if row is None or row.not_after is None or not certificate_path(certs_dir, host).exists():
        state, days_left, not_after = "missing", None, None
    else:
        not_after = row.not_after
        days_left = (not_after - now).total_seconds() / 86400
        if not_after <= now:
            state = "expired"
        elif renewal_due(row.not_before, not_after, now):
            state = "due"
        else:
            state = "valid"
    return CertificateState(host, state, not_after, days_left, failures, row.last_error if row else None,
                            next_attempt, row.last_attempt_at if row else None)
