"""Reports on disk for `flask report import`: JSON, gzip, single mails, mbox files, Maildirs."""

import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPORT = "report"
MESSAGE = "message"


@dataclass(frozen=True)
class Item:
    label: str
    kind: str  # REPORT (a JSON or gzip body) or MESSAGE (an RFC 5322 mail)
    data: bytes


def count_items(paths: list[Path]) -> int:
    return sum(1 for path in paths for _ in _keys(path))


def read_items(paths: list[Path], max_bytes: int) -> Iterator[Item]:
    """Every report or mail under `paths`; a file is read only up to `max_bytes` + 1."""
    for path in paths:
        for label, kind, read in _keys(path):
            yield Item(label, kind, read(max_bytes + 1))


def _keys(path: Path):
    if path.is_dir():
        if (path / "cur").is_dir() and (path / "new").is_dir():
            box = mailbox.Maildir(path, factory=None, create=False)
            for key in sorted(box.keys()):
                yield f"{path}/{key}", MESSAGE, lambda limit, box=box, key=key: _limited(box.get_bytes(key), limit)
        else:
            for child in sorted(path.iterdir()):
                yield from _keys(child)
        return
    if _is_mbox(path):
        box = mailbox.mbox(path, factory=None, create=False)
        try:
            for number, key in enumerate(box.keys(), start=1):
                yield f"{path}#{number}", MESSAGE, lambda limit, box=box, key=key: _limited(box.get_bytes(key), limit)
        finally:
            box.close()
        return
    kind = MESSAGE if path.suffix.lower() == ".eml" else REPORT
    yield str(path), kind, lambda limit, path=path: _read(path, limit)


def _is_mbox(path: Path) -> bool:
    with path.open("rb") as file:
        return path.suffix.lower() == ".mbox" or file.read(5) == b"From "


def _read(path: Path, limit: int) -> bytes:
    with path.open("rb") as file:
        return file.read(limit)


def _limited(data: bytes, limit: int) -> bytes:
    return data[:limit]
