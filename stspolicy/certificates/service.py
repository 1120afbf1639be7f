"""Certificates for every host we serve: issue the missing, renew the due, drop the unwanted.

The hosts are `mta-sts.<domain>` for each hosted domain plus ACME_EXTRA_HOSTS (the admin
and report host). A certificate's chain and its private key (sealed, stspolicy.certificates.sealing)
live in its row, and so does the ACME account key: every serving node writes each host's key
and chain into one file, CERTS_DIR/<host>.pem (`flask node sync`), replaced atomically so
that nginx, which loads it by SNI name on every handshake, never pairs a new certificate
with an old key; no reload is needed. The process that issues writes its own CERTS_DIR at
once too, as a single host without nodes needs. http-01 answers go through the database to
every node as well, so that whichever node the CA reaches answers.
"""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stspolicy.base.atomicfile import fsync_directory, write_atomically
from stspolicy.base.settings import AppSettings
from stspolicy.certificates.acme import AcmeIssuer, IssueError, WebrootChallenges, new_private_key_pem
from stspolicy.certificates.errors import CertificateError
from stspolicy.certificates.models import AcmeAccount, AcmeChallenge, Certificate
from stspolicy.certificates.renewal import issued_certificate, renewal_due, retry_at
from stspolicy.certificates.sealing import reseal, seal, unseal
from stspolicy.nodes.service import serving_revision, wait_for_nodes
from stspolicy.policies.models import Domain
from stspolicy.policies.names import POLICY_HOST_PREFIX, InvalidName, normalize_domain


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


def acme_issuer(session: Session, settings: AppSettings) -> AcmeIssuer:
    """The issuer configured by ACME_* settings; CertificateError when ACME is not configured."""
    acme = settings.certificates
    if not acme.acme_directory_url:
        raise CertificateError("ACME_DIRECTORY_URL is not set: certificates are not managed here")
    return AcmeIssuer(acme.acme_directory_url, account_key_pem(session, settings),
                      DatabaseChallenges(session, settings), email=acme.acme_email, ca_bundle=acme.acme_ca_bundle)


def account_key_pem(session: Session, settings: AppSettings) -> bytes:
    """The key of our account at ACME_DIRECTORY_URL, made and stored sealed on first use (the account is the key)."""
    acme = settings.certificates
    query = select(AcmeAccount.key_sealed).where(AcmeAccount.directory_url == acme.acme_directory_url)
    sealed = session.scalar(query)
    if sealed is None:
        session.add(AcmeAccount(directory_url=acme.acme_directory_url,
                                key_sealed=seal(acme.key_encryption_keys, new_private_key_pem())))
        try:
            session.commit()
        except IntegrityError:  # another process made it first: use that one
            session.rollback()
        sealed = session.scalar(query)
    return unseal(acme.key_encryption_keys, sealed)


class DatabaseChallenges:
    """http-01 answers stored for every serving node to write into its webroot; also into this host's ACME_WEBROOT.

    `publish` returns once every node that is not silent serves the answer, or after
    NODE_SILENT_SECONDS: a CA that then reaches a node without it fails the validation, which
    is recorded and tried again later.
    """

    def __init__(self, session: Session, settings: AppSettings):
        self._session, self._settings = session, settings
        webroot = settings.certificates.acme_webroot
        self._local = WebrootChallenges(webroot) if webroot else None

    def publish(self, token: str, validation: str) -> None:
        self._session.add(AcmeChallenge(token=token, validation=validation))
        self._session.commit()
        if self._local:
            self._local.publish(token, validation)
        wait_for_nodes(self._session, self._settings.nodes, serving_revision(self._session),
                       self._settings.nodes.silent_seconds, silent_too=False)

    def withdraw(self, token: str) -> None:
        self._session.execute(delete(AcmeChallenge).where(AcmeChallenge.token == token))
        self._session.commit()
        if self._local:
            self._local.withdraw(token)


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
    _certs_dir(settings)
    rows = {row.host: row for row in session.scalars(select(Certificate))}
    return [_state(host, rows.get(host), now) for host in wanted_hosts(session, settings)]


def certificate_state(session: Session, settings: AppSettings, host: str, now: datetime) -> CertificateState:
    """The certificate of one served host, e.g. `mta-sts.<domain>` for the domain's page."""
    _certs_dir(settings)
    return _state(host, session.scalar(select(Certificate).where(Certificate.host == host)), now)


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
        install_certificate(certificate_path(_certs_dir(settings), host), issued.key_pem + issued.fullchain_pem)
    except (IssueError, OSError) as error:
        row.failures += 1
        row.last_error = str(error)
        session.commit()
        return IssueOutcome(host, "failed", str(error))
    row.fullchain_pem = issued.fullchain_pem.decode("ascii")
    row.key_sealed = seal(settings.certificates.key_encryption_keys, issued.key_pem)
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


def reseal_keys(session: Session, settings: AppSettings) -> int:
    """Seal every private key in the database again with the first of KEY_ENCRYPTION_KEYS; how many there are."""
    keys = settings.certificates.key_encryption_keys
    rows = [*session.scalars(select(Certificate).where(Certificate.key_sealed.is_not(None))),
            *session.scalars(select(AcmeAccount))]
    for row in rows:
        row.key_sealed = reseal(keys, row.key_sealed)
    session.commit()
    return len(rows)


def certificate_fingerprints(session: Session) -> dict[str, str | None]:
    """Every host with a certificate row: what its issued certificate is (None while it has none)."""
    rows = session.execute(select(Certificate.host, Certificate.serial, Certificate.issued_at,
                                  Certificate.fullchain_pem.is_not(None)))
    return {host: f"{serial}@{issued_at.isoformat()}" if stored and issued_at else None
            for host, serial, issued_at, stored in rows}


def certificate_files(session: Session, settings: AppSettings, hosts: list[str]) -> dict[str, bytes]:
    """What CERTS_DIR/<host>.pem holds for each of `hosts` that has a certificate: the unsealed key, then the chain."""
    keys = settings.certificates.key_encryption_keys
    rows = session.execute(select(Certificate.host, Certificate.key_sealed, Certificate.fullchain_pem).where(
        Certificate.host.in_(hosts), Certificate.fullchain_pem.is_not(None), Certificate.key_sealed.is_not(None)))
    return {host: unseal(keys, sealed) + chain.encode("ascii") for host, sealed, chain in rows}


def challenge_answers(session: Session) -> dict[str, str]:
    """The http-01 answers being served, by token."""
    rows = session.execute(select(AcmeChallenge.token, AcmeChallenge.validation))
    return {token: validation for token, validation in rows}


def certificate_path(certs_dir: Path, host: str) -> Path:
    return certs_dir / f"{host}.pem"


def install_certificate(path: Path, pem: bytes) -> None:
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    write_atomically(path, pem, 0o640)  # nginx workers read it through the directory's group
    fsync_directory(path.parent)


def _state(host: str, row: Certificate | None, now: datetime) -> CertificateState:
    failures = row.failures if row else 0
    next_attempt = retry_at(row.last_attempt_at, failures) if row and row.last_attempt_at and failures else None
    if row is None or row.not_after is None or row.fullchain_pem is None:
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
