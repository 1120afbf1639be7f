"""Polling a report mailbox over IMAPS: the adapter `flask report fetch-imap` drives.

Each unflagged message in the folder is handed to `handle`; a message that gave a
report is moved to the done folder, one that did not is flagged and left in place (and
skipped by later polls). If `handle` raises (the database is down), the message stays
untouched for the next poll.
"""

import imaplib
import re
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

DONE = "done"
FAILED = "failed"
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


class ImapError(RuntimeError):
    pass


@dataclass(frozen=True)
class Mailbox:
    host: str
    port: int
    user: str
    password: str
    folder: str = "INBOX"
    done_folder: str = "tlsrpt-processed"
    cafile: str = ""
    timeout: float = 30


def connect(box: Mailbox) -> imaplib.IMAP4_SSL:
    """Log in over TLS with certificate and host name checks (a private CA from `cafile`)."""
    context = ssl.create_default_context(cafile=box.cafile or None)
    try:
        client = imaplib.IMAP4_SSL(box.host, box.port, ssl_context=context, timeout=box.timeout)
    except OSError as error:
        raise ImapError(f"IMAP {box.host}:{box.port}: {error}") from None
    try:
        client.login(box.user, box.password)
    except (OSError, imaplib.IMAP4.error) as error:
        client.shutdown()
        raise ImapError(f"IMAP {box.host}:{box.port}: {error}") from None
    return client


def poll(client: imaplib.IMAP4, box: Mailbox, handle: Callable[[bytes], str], max_bytes: int) -> Counter:
    """Process every unflagged message once; returns counts of DONE and FAILED."""
    counts: Counter = Counter()
    client.create(_quoted(box.done_folder))  # answers NO when it exists already
    _ok(client.select(_quoted(box.folder)), "SELECT")
    uids = _ok(client.uid("SEARCH", None, "UNFLAGGED"), "SEARCH")[0].split()
    for uid in uids:
        size = _SIZE.search(_ok(client.uid("FETCH", uid, "(RFC822.SIZE)"), "FETCH")[0])
        if size and int(size.group(1)) > max_bytes:
            verdict = FAILED
        else:
            verdict = handle(_message_bytes(_ok(client.uid("FETCH", uid, "(BODY.PEEK[])"), "FETCH")))
        if verdict == DONE:
            _ok(client.uid("MOVE", uid, _quoted(box.done_folder)), "MOVE")
        else:
            _ok(client.uid("STORE", uid, "+FLAGS", "(\\Flagged)"), "STORE")
        counts[verdict] += 1
    return counts


def _message_bytes(data: list) -> bytes:
    for item in data:
        if isinstance(item, tuple):
            return item[1]
    raise ImapError("FETCH returned no message")


def _ok(response: tuple, command: str) -> list:
    status, data = response
    if status != "OK":
        raise ImapError(f"IMAP {command} failed: {data!r}")
    return data


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
