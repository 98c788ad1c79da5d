"""A local spool for opt-outs that arrive while the database cannot take them.

One JSON file per opt-out, written to a temporary name, flushed to disk and linked to its final
name, so a file that exists is complete and survives a crash. The final name is the opt-out's
repeat key: linking fails if that file exists, so a replayed click while the database is down
does not grow the spool. Pure Python; the service applies and removes the files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = ".drain.lock"


def write(directory: Path, entry: dict, *, name: str | None = None) -> tuple[str, bool]:
    """Store `entry` durably as `name` (default: a fresh id) unless a file of that name is
    already spooled. Returns the capture id of the spooled entry and whether this call wrote it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    # The capture id is fresh for every file (not derived from `name`): after a resubscription
    # the same repeat key may be spooled again, and that second opt-out must not collide with
    # the first one's capture id when it is replayed.
    capture_id = str(uuid.uuid4())
    final = directory / f"{name or capture_id}.json"
    if final.exists():
        return _capture_id_of(final) or capture_id, False
    temporary = directory / f".{capture_id}.tmp"
    data = json.dumps({**entry, "capture_id": capture_id}).encode()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, final)  # atomic and exclusive, unlike a rename
        created = True
    except FileExistsError:  # the same opt-out, spooled by a concurrent request
        created = False
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_directory(directory)  # the link must reach the disk before we acknowledge
    if not created:
        return _capture_id_of(final) or capture_id, False
    return capture_id, True


def _fsync_directory(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _capture_id_of(path: Path) -> str | None:
    try:
        return json.loads(path.read_bytes())["capture_id"]
    except (OSError, ValueError, KeyError):
        return None


def pending(directory: Path) -> Iterator[tuple[Path, dict]]:
    """Spooled entries, oldest first. Unreadable files are skipped, not deleted; files another
    process removes meanwhile are skipped too."""
    try:
        found = list(os.scandir(directory))
    except FileNotFoundError:
        return
    dated = []
    for item in found:
        if not item.name.endswith(".json"):
            continue
        try:
            dated.append((item.stat().st_mtime, item.name))
        except FileNotFoundError:
            continue
    for _, name in sorted(dated):
        path = directory / name
        try:
            yield path, json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue


def has_pending(directory: Path) -> bool:
    try:
        return any(name.endswith(".json") for name in os.listdir(directory))
    except FileNotFoundError:
        return False


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)


@contextlib.contextmanager
def drain_lock(directory: Path, *, wait: bool) -> Iterator[bool]:
    """Hold the spool's drain lock (an flock, so it is released if the holder dies). Yields
    False at once, without the lock, if another process or thread holds it and `wait` is off."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
