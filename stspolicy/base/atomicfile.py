"""Files that other programs (nginx) read while we replace them: written whole or not at all."""

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes, mode: int, modified_at: float | None = None) -> None:
    """Replace `path` with `data` so readers see the old file or the new one, never a part.

    The temporary file lives beside the target (same file system, so the rename is atomic)
    and is named with a leading dot, which no name we serve ever has. `modified_at` sets the
    modification time before the rename, so no reader sees the new bytes with another time.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        if modified_at is not None:
            os.utime(temporary, (modified_at, modified_at))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def fsync_directory(folder: Path) -> None:
    """Make renames and removals in `folder` survive a crash."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
