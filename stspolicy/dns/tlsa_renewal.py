"""A renewed MX certificate goes into service only once DANE senders can know it.

`stage_certificate` keeps the renewed certificate and key aside (not installed) and
publishes its TLSA record beside the current one at once; `install_staged`, run by a timer,
installs them into the mail server and reloads it once that record has been in DNS,
DNSSEC-secure, for twice the TTL (RFC 7671 section 8.1), then prunes the records nothing
presents any more. A renewal that keeps the key (and issuer) needs no wait.
"""

import shlex
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy.orm import Session

from stspolicy.base.atomicfile import write_atomically
from stspolicy.base.settings import AppSettings
from stspolicy.dns.check import rollover_plan
from stspolicy.dns.dane import PemError, RolloverPlan, load_certificates, pinned_records, spki_der
from stspolicy.dns.models import StagedCertificate
from stspolicy.dns.queries import pending_stage
from stspolicy.dns.tlsa_publish import TlsaOutcome, publish_tlsa

RELOAD_TIMEOUT = 120


class RenewalError(Exception):
    """A file or command of the renewal that did not work; the message says which and why."""


def read_chain(path: Path) -> list[x509.Certificate]:
    try:
        return load_certificates(path.read_bytes())
    except (OSError, PemError) as error:
        raise RenewalError(f"{path}: {error}") from None


def _key_matches(key_pem: bytes, certificate: x509.Certificate) -> bool:
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as error:
        raise RenewalError(f"the key is no PEM private key without a password: {error}") from None
    return spki_der(key.public_key()) == spki_der(certificate.public_key())


def stage_certificate(
    session: Session, settings: AppSettings, host: str, *, chain_file: Path, key_file: Path, installed_file: Path,
    staging_dir: Path, pin: str, ttl: int | None, now: datetime,
) -> tuple[StagedCertificate, TlsaOutcome]:
    """Keep a renewed certificate aside for `host` and publish its records beside the installed one's."""
    chain, installed = read_chain(chain_file), read_chain(installed_file)
    try:
        key_pem = key_file.read_bytes()
    except OSError as error:
        raise RenewalError(f"{key_file}: {error.strerror}") from None
    if not _key_matches(key_pem, chain[0]):
        raise RenewalError(f"{key_file} is not the key of the certificate in {chain_file}")
    folder = staging_dir / host
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    chain_pem = chain_file.read_bytes()
    write_atomically(folder / "fullchain.pem", chain_pem, 0o644)
    write_atomically(folder / "privkey.pem", key_pem, 0o600)
    staged = StagedCertificate(host=host, chain_pem=chain_pem.decode("ascii"), chain_path=str(folder / "fullchain.pem"),
                               key_path=str(folder / "privkey.pem"), staged_at=now)
    session.add(staged)
    session.flush()
    outcome = publish_tlsa(session, settings, host, current=pinned_records(installed, pin),
                           upcoming=pinned_records(chain, pin), ttl=ttl, now=now)
    return staged, outcome


@dataclass
class InstallOutcome:
    staged: StagedCertificate | None  # the certificate staged for the host, if any
    plans: list[RolloverPlan]  # one per record that changes; empty: nothing to wait for
    installed: bool
    publication: TlsaOutcome | None = None  # the records after pruning

    @property
    def waiting(self) -> bool:
        return self.staged is not None and not self.installed


def install_staged(session: Session, settings: AppSettings, host: str, *, installed_file: Path,
                   installed_key_file: Path, reload_command: str, pin: str, now: datetime) -> InstallOutcome:
    """Install the certificate staged for `host` once its records are safe, then prune what nothing presents.

    Not yet safe: nothing changes, and the plans say until when. No staged certificate: only pruning.
    """
    installed = read_chain(installed_file)
    staged = pending_stage(session, host)
    if staged is None:
        return InstallOutcome(None, [], False, publish_tlsa(session, settings, host,
                                                            current=pinned_records(installed, pin),
                                                            prune=True, now=now))
    chain = load_certificates(staged.chain_pem.encode("ascii"))
    current, upcoming = pinned_records(installed, pin), pinned_records(chain, pin)
    plans = [rollover_plan(session, settings, old, new, now=now, domains=[], mx_host=host)
             for old, new in zip(current, upcoming, strict=True) if old != new]
    if not all(plan.ready(now) for plan in plans):
        return InstallOutcome(staged, plans, False)
    publish_tlsa(session, settings, host, current=current, upcoming=upcoming, now=now)  # presented until this moment
    try:
        write_atomically(installed_key_file, Path(staged.key_path).read_bytes(), 0o600)
        write_atomically(installed_file, Path(staged.chain_path).read_bytes(), 0o644)
    except OSError as error:
        raise RenewalError(f"installing the staged certificate of {host}: {error}") from None
    _reload(reload_command)
    staged.installed_at = now
    session.commit()
    return InstallOutcome(staged, plans, True, publish_tlsa(session, settings, host, current=upcoming, prune=True,
                                                            now=now))


def _reload(command: str) -> None:
    try:
        result = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=RELOAD_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RenewalError(f"reload command {command!r}: {error}") from None
    if result.returncode != 0:
        raise RenewalError(f"reload command {command!r} exited {result.returncode}: "
                           f"{(result.stderr or result.stdout).strip()[:500]}")

