"""Policies published as files that nginx serves, so fetches depend on neither gunicorn nor the database.

One file per hosted domain, `<POLICY_FILES_DIR>/<domain>.txt`, holding exactly the bytes of
its current policy. A file is replaced atomically (write, fsync, rename), so nginx serves the
old policy or the new one, never a torn one. Every change is published to its domain's file
right after the commit (stspolicy.propagation), in whichever process made it; a full
sync (`flask policy-files sync`, at start and from a timer) repairs anything missed and
removes the files of deleted domains; on serving nodes `flask node sync` writes them
(stspolicy.node_sync). Writers hold a lock and read the database after their own commit, so
when two processes change policies at once the files end with the latest.
"""

import contextlib
import fcntl
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from stspolicy.base.atomicfile import fsync_directory, write_atomically
from stspolicy.extensions import db
from stspolicy.policies.queries import load_current_policies

SUFFIX = ".txt"
LOCK_NAME = ".lock"


class PolicyFileError(RuntimeError):
    """A policy change was committed but its file could not be written."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class SyncResult:
    written: int
    removed: int
    unchanged: int


def policy_file(root: Path, domain: str) -> Path:
    return root / f"{domain}{SUFFIX}"


def sync_policy_files(root: Path, names: Collection[str] | None = None) -> SyncResult:
    """Make the files under `root` say what the database says: for every domain, or only `names`."""
    with locked(root):
        current = load_current_policies(names)
        db.session.commit()  # end the read, so no connection is held while files are written
        on_disk = policy_names_on_disk(root) if names is None else {name for name in names
                                                                      if policy_file(root, name).exists()}
        return write_policy_files(root, {domain: served.body for domain, served in current.items()},
                                  on_disk - current.keys())


def write_policy_files(root: Path, bodies: dict[str, bytes], gone: Collection[str]) -> SyncResult:
    """Write the policies of `bodies` that differ on disk and remove the files of `gone`; under `locked(root)`."""
    written = unchanged = 0
    for domain, body in bodies.items():
        if _write_if_changed(policy_file(root, domain), body):
            written += 1
        else:
            unchanged += 1
    for domain in gone:
        policy_file(root, domain).unlink(missing_ok=True)
    if written or gone:
        fsync_directory(root)
    return SyncResult(written=written, removed=len(gone), unchanged=unchanged)


def policy_names_on_disk(root: Path) -> set[str]:
    return {path.name[: -len(SUFFIX)] for path in root.glob(f"*{SUFFIX}")}


def read_policy_files(root: Path) -> dict[str, bytes]:
    """The policy bytes of every domain with a file under `root`, by domain."""
    return {path.name[: -len(SUFFIX)]: path.read_bytes() for path in root.glob(f"*{SUFFIX}") if path.is_file()}


def publish_policy_files(root: Path | None, names: Collection[str]) -> None:
    """Publish the files of `names` after a committed change; nothing without a directory (POLICY_FILES_DIR)."""
    if root is None:
        return
    try:
        sync_policy_files(root, names)
    except OSError as error:
        raise PolicyFileError(
            f"the change is saved but its policy file in {root} could not be written ({error.strerror}); "
            "fix that, then run `flask policy-files sync` before publishing the new _mta-sts id"
        ) from None


def _write_if_changed(path: Path, body: bytes) -> bool:
    """Write a changed policy with a modification time at least a second after the old one's:
    nginx's ETag is made of that time in seconds, so it changes with every version."""
    try:
        if path.read_bytes() == body:
            return False
        previous = path.stat().st_mtime
    except FileNotFoundError:
        previous = 0
    write_atomically(path, body, 0o644, modified_at=max(time.time(), int(previous) + 1))  # nginx runs as another user
    return True


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold the writers' lock of the policy files under `root` (made if missing)."""
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    with open(root / LOCK_NAME, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
