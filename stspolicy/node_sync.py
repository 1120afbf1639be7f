"""`flask node sync`: a serving node's files for nginx say what the database says, moments after each change.

Every serving node runs it (deploy/systemd/stspolicy-node.service). It writes the policy files
(POLICY_FILES_DIR), each host's key and chain (CERTS_DIR) and the ACME http-01 answers
(ACME_WEBROOT), each atomically, then records in the node's row the revision its files say
(stspolicy.nodes.service): publishing an `_mta-sts` id waits for that. It applies a change
as soon as PostgreSQL notifies one, looks at the revision on every heartbeat in case a
notification was lost, and compares everything with the database at start and every
NODE_RECONCILE_SECONDS. While the database cannot be reached it leaves the files as they are,
so nginx goes on serving them, and tries again every heartbeat; then it starts over with a
full comparison. The shipped nginx loads certificates by name on each handshake: no reload.
"""

import contextlib
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from flask import Flask
from sqlalchemy.orm import Session

from stspolicy.base.atomicfile import fsync_directory, write_atomically
from stspolicy.base.settings import AppSettings
from stspolicy.certificates.acme import TOKEN, challenge_file, challenge_folder
from stspolicy.certificates.service import (
    certificate_files,
    certificate_fingerprints,
    certificate_path,
    challenge_answers,
    install_certificate,
)
from stspolicy.extensions import DATABASE_UNAVAILABLE, db, utcnow
from stspolicy.nodes.listener import ChangeListener
from stspolicy.nodes.service import record_failure, record_heartbeat, record_sync, serving_revision
from stspolicy.policies.files import locked, policy_names_on_disk, write_policy_files
from stspolicy.policies.queries import current_version_ids, load_current_policies

BATCH = 500  # names in one IN (...) list


@dataclass(frozen=True)
class Applied:
    revision: int
    changed: int  # files written or removed
    policies: int
    certificates: int


@dataclass(frozen=True)
class _Read:
    """What one look at the database found, to be written."""

    revision: int
    versions: dict[str, int]
    bodies: dict[str, bytes]
    gone_policies: set[str]
    fingerprints: dict[str, str]
    pems: dict[str, bytes]
    gone_certificates: set[str]
    answers: dict[str, str] | None


class NodeFiles:
    """This node's files, and what they were written from, so that a sync reads only what changed."""

    def __init__(self, settings: AppSettings):
        self._settings = settings
        self._versions: dict[str, int] = {}  # domain: the policy version row its file holds
        self._fingerprints: dict[str, str] = {}  # host: the certificate its file holds
        self.revision: int | None = None  # what the files say, once written

    def apply(self, session: Session, *, full: bool) -> Applied:
        """Read what changed (everything when `full`) and write it; the revision the files then say."""
        root = self._settings.serving.policy_files_dir
        # Under the policy writers' lock from the read on, so that an older read never lands last.
        with locked(root) if root else contextlib.nullcontext():
            read = self._read(session, full)
            session.commit()  # end the read: no connection is held while files are written
            changed = self._write(read)
        self._versions, self.revision = read.versions, read.revision
        self._fingerprints = read.fingerprints
        return Applied(read.revision, changed, len(read.versions), len(read.fingerprints))

    def _read(self, session: Session, full: bool) -> _Read:
        revision = serving_revision(session)  # first: whatever is read next is at least this new
        versions = current_version_ids(session)
        changed = [name for name, row_id in versions.items() if full or self._versions.get(name) != row_id]
        bodies = _policy_bodies(changed, everything=full)
        root = self._settings.serving.policy_files_dir
        on_disk = policy_names_on_disk(root) if full and root and root.exists() else self._versions.keys()
        fingerprints, pems, gone_certificates = {}, {}, set()
        if self._settings.certificates.certs_dir:
            rows = certificate_fingerprints(session)
            fingerprints = {host: issued for host, issued in rows.items() if issued}
            hosts = [host for host, issued in fingerprints.items() if full or self._fingerprints.get(host) != issued]
            for batch in _batches(hosts):
                pems.update(certificate_files(session, self._settings, batch))
            # A file is removed with its host's row: a host whose certificate is not in the database
            # yet (issued before certificates were kept there) keeps its file until it is.
            gone_certificates = (self._hosts_on_disk() if full else set(self._fingerprints)) - rows.keys()
        answers = challenge_answers(session) if self._settings.certificates.acme_webroot else None
        return _Read(revision, versions, bodies, set(on_disk) - versions.keys(), fingerprints, pems,
                     gone_certificates, answers)

    def _write(self, read: _Read) -> int:
        changed = 0
        root = self._settings.serving.policy_files_dir
        if root:
            result = write_policy_files(root, read.bodies, read.gone_policies)
            changed += result.written + result.removed
        certs_dir = self._settings.certificates.certs_dir
        if certs_dir:
            for host, pem in read.pems.items():
                path = certificate_path(certs_dir, host)
                if _differs(path, pem):
                    install_certificate(path, pem)
                    changed += 1
            for host in read.gone_certificates:
                certificate_path(certs_dir, host).unlink(missing_ok=True)
                changed += 1
        if read.answers is not None:
            changed += _write_answers(self._settings.certificates.acme_webroot, read.answers)
        return changed

    def _hosts_on_disk(self) -> set[str]:
        certs_dir = self._settings.certificates.certs_dir
        return {path.name.removesuffix(".pem") for path in certs_dir.glob("*.pem")} if certs_dir.exists() else set()


def _policy_bodies(names: list[str], *, everything: bool) -> dict[str, bytes]:
    if not names:
        return {}
    wanted = set(names)
    current = load_current_policies(None if everything or len(names) > BATCH else names)
    return {name: served.body for name, served in current.items() if name in wanted}


def _batches(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), BATCH):
        yield items[start:start + BATCH]


def _differs(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() != data
    except FileNotFoundError:
        return True


def _write_answers(webroot: Path, answers: dict[str, str]) -> int:
    """The http-01 answers as files; the files of answers no longer in the database removed."""
    changed = 0
    for token, validation in answers.items():
        path = challenge_file(webroot, token)
        if _differs(path, validation.encode("ascii")):
            path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            write_atomically(path, validation.encode("ascii"), 0o644)
            changed += 1
    folder = challenge_folder(webroot)
    stale: Collection[Path] = [path for path in folder.iterdir() if TOKEN.fullmatch(path.name)
                               and path.name not in answers] if folder.exists() else []
    for path in stale:
        path.unlink(missing_ok=True)
    if changed or stale:
        fsync_directory(folder)
    return changed + len(stale)


# What a node cannot reach the database through: SQLAlchemy's sessions, or the listener's own connection.
UNREACHABLE = (*DATABASE_UNAVAILABLE, psycopg.OperationalError)


def sync_once(files: NodeFiles, settings: AppSettings, started_at, *, full: bool,
              report: Callable[[str], None]) -> bool:
    """Apply what changed and record it in the node's row; a failure to write is recorded there too. True if applied.

    Raises what UNREACHABLE names while the database cannot be reached.
    """
    name = settings.nodes.name
    try:
        applied = files.apply(db.session, full=full)
    except (OSError, ValueError) as error:  # a full disk, a key that cannot be unsealed (CertificateError)...
        db.session.rollback()
        message = getattr(error, "message", None) or str(error)
        report(f"node {name}: files not brought up to date: {message}")
        record_failure(db.session, name, message, started_at, utcnow())
        return False
    record_sync(db.session, name, applied.revision, policies=applied.policies, certificates=applied.certificates,
                started_at=started_at, now=utcnow())
    if applied.changed or full:
        report(f"node {name}: revision {applied.revision}, {applied.changed} file(s) changed, "
               f"{applied.policies} policies, {applied.certificates} certificates")
    return True


def run_node(app: Flask, report: Callable[[str], None], *, once: bool = False) -> None:
    """Keep this node's files current until the process is stopped; with `once`, one full sync and return."""
    settings = app.extensions["settings"]
    nodes = settings.nodes
    files = NodeFiles(settings)
    started_at = utcnow()
    connect_args = app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("connect_args", {})
    while True:
        try:
            with ChangeListener(db.engine.url, connect_args) as listener:  # before the read: no change slips by
                sync_once(files, settings, started_at, full=True, report=report)
                if once:
                    return
                reconciled = time.monotonic()
                while True:
                    notified = listener.wait(nodes.heartbeat_seconds)
                    full = time.monotonic() - reconciled >= nodes.reconcile_seconds
                    if notified or full or serving_revision(db.session) != files.revision:
                        sync_once(files, settings, started_at, full=full, report=report)
                        reconciled = time.monotonic() if full else reconciled
                    else:
                        record_heartbeat(db.session, nodes.name, started_at, utcnow())
        except UNREACHABLE as error:
            db.session.remove()
            detail = str(getattr(error, "orig", None) or error).partition("\n")[0]
            if once:
                raise
            report(f"node {nodes.name}: database unreachable, serving the files as they are: {detail}")
            time.sleep(nodes.heartbeat_seconds)
