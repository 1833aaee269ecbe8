"""Private files: the data directory is 0700 and what Riskiturva writes into it 0600.

The database holds password hashes, the audit trail and the scheduler's job data; the data
directory also holds the session-signing key and the report archive.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600


def private_directory(path: Path) -> Path:
    """Create `path` (and its parents) if missing; a folder created here is 0700."""
    if not path.is_dir():
        path.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty and 0600 if missing; an existing one others can read becomes 0600."""
    private_directory(path.parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        tighten(path)
    else:
        os.close(descriptor)
    return path


def tighten(path: Path) -> None:
    """Drop the group's and others' permissions of an existing file (no-op when absent)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        path.chmod(mode & 0o700)


def write_private(path: Path, content: bytes) -> None:
    """Write `content` to a new 0600 file beside `path`, then move it into place."""
    private_directory(path.parent)
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    os.replace(partial, path)
