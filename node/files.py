"""Files only their owner may read: created once (never overwritten), mode 0600, fsynced."""

from __future__ import annotations

import os
import pathlib


def create_private_file(path: pathlib.Path, data: bytes) -> None:
    """Create `path` (mode 0600) holding `data`, synced to disk. Raises FileExistsError if it
    exists and OSError if it cannot be created; callers turn those into their own errors."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
