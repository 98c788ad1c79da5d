"""A local spool for opt-outs that arrive while the database cannot take them.

One JSON file per opt-out, written to a temporary name, flushed to disk and renamed, so a file
that exists is complete and survives a crash. Pure Python; the service applies and removes them.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


def write(directory: Path, entry: dict) -> str:
    """Store `entry` durably and return its capture id."""
    directory.mkdir(parents=True, exist_ok=True)
    capture_id = str(uuid.uuid4())
    final = directory / f"{capture_id}.json"
    temporary = directory / f".{capture_id}.tmp"
    data = json.dumps({**entry, "capture_id": capture_id}).encode()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, final)
    # The rename itself must reach the disk before we acknowledge.
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return capture_id


def pending(directory: Path) -> Iterator[tuple[Path, dict]]:
    """Spooled entries, oldest first. Unreadable files are skipped, not deleted."""
    if not directory.is_dir():
        return
    files = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime)
    for path in files:
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
