"""Many report files parsed on every CPU the process may use, printed in the order given.

`manage.py parse_report` over a directory of reports spends nearly all its time parsing, one
independent message after another. Here the files are cut into consecutive shares, one per CPU:
this process parses the first share and prints as it goes, while forked copies of it parse the
others, each handing back its printed text through a pipe, read in turn. A copy that does not
answer in full has its share parsed again here, so the output is always all of it and in order.
Only where fork exists and without threads (the command's own entry point, not under Django),
and only for enough files to pay for the fork.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

__all__ = ["MIN_FILES_PER_WORKER", "print_in_parallel", "worker_count"]

# Below this many files per process a fork costs more than it saves.
MIN_FILES_PER_WORKER = 16
# What one file costs beyond its bytes (opening it, a report, a line of output), in bytes.
_FILE_OVERHEAD = 4096

# Prints `files`, each piece of text through the function given; returns how many could not
# be read.
Run = Callable[[Sequence[str], Callable[[str], None]], int]


def worker_count(files: Sequence[str]) -> int:
    """Processes for `files`: one per CPU that other work leaves idle (on CPUs that are busy
    anyway, the copies would only add their own start and slow the others)."""
    if not hasattr(os, "fork"):
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(cpus - _busy_elsewhere(), len(files) // MIN_FILES_PER_WORKER))


def _busy_elsewhere() -> int:
    """CPUs other work is using now: Linux counts the tasks running at this moment (this one
    among them) in /proc/loadavg; elsewhere, the last minute's load average, less this one."""
    try:
        with open("/proc/loadavg") as file:
            running = int(file.read().split()[3].split("/")[0])
        return max(0, running - 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return max(0, round(os.getloadavg()[0] - 1))
    except (OSError, AttributeError):
        return 0


def print_in_parallel(
    files: Sequence[str], run: Run, write: Callable[[str], None], workers: int
) -> int:
    """`run(files, write)` as if called once, with the work shared by `workers` processes.
    `write` must write to sys.stdout, where the other processes' text goes too (as bytes, in
    sys.stdout's encoding)."""
    shares = _shares(files, workers)
    sys.stdout.flush()
    children: list[tuple[int, int, Sequence[str]]] = []
    for share in shares[1:]:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child ends in os._exit
            os.close(read_end)
            _work(share, run, write_end)
        os.close(write_end)
        children.append((pid, read_end, share))
    unreadable = run(shares[0], write)
    for pid, read_end, share in children:
        with os.fdopen(read_end, "rb") as pipe:
            answer = pipe.read()
        _, status = os.waitpid(pid, 0)
        count, newline, text = answer.partition(b"\n")
        if status == 0 and newline and count.isdigit():
            sys.stdout.flush()
            sys.stdout.buffer.write(text)
            unreadable += int(count)
        else:
            unreadable += run(share, write)
    return unreadable


def _work(share: Sequence[str], run: Run, fd: int) -> None:  # pragma: no cover - in the child
    """The child's part: its share's text, behind the count of unreadable files."""
    status = 1
    try:
        chunks: list[str] = []
        count = run(share, chunks.append)
        out = sys.stdout
        text = "".join(chunks).encode(out.encoding, out.errors or "strict")
        with os.fdopen(fd, "wb") as pipe:
            pipe.write(b"%d\n" % count)
            pipe.write(text)
        status = 0
    except BaseException:
        pass  # the parent parses the share again and says what goes wrong there
    finally:
        os._exit(status)


def _shares(files: Sequence[str], workers: int) -> list[Sequence[str]]:
    """Consecutive runs of `files`, about equal in bytes to read."""
    weights = []
    for name in files:
        try:
            size = os.stat(name).st_size
        except OSError:
            size = 0
        weights.append(size + _FILE_OVERHEAD)
    total = sum(weights)
    shares: list[Sequence[str]] = []
    start, done = 0, 0
    for index, weight in enumerate(weights):
        done += weight
        if len(shares) < workers - 1 and done >= total * (len(shares) + 1) / workers:
            shares.append(files[start : index + 1])
            start = index + 1
    shares.append(files[start:])
    return [share for share in shares if share]
