"""Folders an upload is unpacked into before it is kept, locked while in use.

Each holds a lock file whose advisory lock (flock) its process keeps for as long as it unpacks. The operating
system drops the lock when that process ends however it ends (a `kill -9` included), so a clean-up (`gc`, a start)
tells an interrupted folder from one in use by trying the lock, not by guessing from its age.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STAGING_PREFIX = ".incoming-"
LOCK_NAME = ".lock"
#: A folder without a lock file (made before locks existed, or killed before taking it) is interrupted once older.
UNLOCKED_GRACE_S = 3600.0


@contextmanager
def staging_folder(root: Path) -> Iterator[Path]:
    """Yield a new locked folder under `root` to unpack into; remove it (whatever is left in it) afterwards."""
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=root, prefix=STAGING_PREFIX))
    try:
        with open(folder / LOCK_NAME, "wb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def interrupted_staging(root: Path) -> list[Path]:
    """Return the staging folders under `root` no live process holds: left by one killed while unpacking."""
    if not root.is_dir():
        return []
    return [folder for folder in sorted(root.glob(f"{STAGING_PREFIX}*")) if folder.is_dir() and _abandoned(folder)]


def _abandoned(folder: Path) -> bool:
    """Return whether no process holds the folder's lock (or, without a lock file, whether it is old)."""
    try:
        handle = os.open(folder / LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        try:
            return time.time() - folder.stat().st_mtime > UNLOCKED_GRACE_S
        except FileNotFoundError:  # finished meanwhile
            return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(handle)  # releases the lock if it was taken: the folder's owner is gone, nobody takes it again
    return True
