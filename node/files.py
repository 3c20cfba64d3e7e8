"""Files only their owner may read: created once (never overwritten), mode 0600, fsynced."""

from __future__ import annotations

import os
import pathlib
import stat


class LooseFileModeError(Exception):
    """A secret file that others than its owner may read or write."""


def check_private_file(path: pathlib.Path, what: str) -> None:
    """Raise `LooseFileModeError` when `path` (a key or passphrase file) is readable or writable
    by its group or by others: the message names the file, its mode and the fix. A file that
    cannot be stat'ed is left to the caller's read, which reports it."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if stat.S_IMODE(mode) & 0o077:
        raise LooseFileModeError(
            f"{what} {path} has mode {stat.S_IMODE(mode):04o}: group and others may read or "
            f"write it; only its owner may. Fix: chmod 600 {path}")


def create_private_file(path: pathlib.Path, data: bytes) -> None:
    """Create `path` (mode 0600) holding `data`, synced to disk. Raises FileExistsError if it
    exists and OSError if it cannot be created; callers turn those into their own errors."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
