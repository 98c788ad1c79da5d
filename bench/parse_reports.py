"""Report parsing throughput: `fbl.parse.parse` beside the bare stdlib parse of the same mail.

Every message in the shared fixture corpus (complaints, bounces, auto-replies) is parsed in
rounds, alternating the baseline, `email.message_from_bytes(raw, policy=email.policy.default)`,
with `fbl.parse.parse(raw)`, until each has run for about --seconds. Both rates come from the
same process on the same messages, so the ratio holds on a busy machine too.

Target (DESIGN.md, performance budgets): parse rate at least 0.5 of the baseline rate.
Needs no database. Run from anywhere: `python bench/parse_reports.py`.

With `--vs-command "CMD ..."` it compares whole processes instead: `manage.py parse_report` over
all the fixture files as one process, and another parser's command over the same files as one
process, in alternating rounds (start-up, imports and output included; both outputs are read
through a pipe). The file paths replace a `{files}` placeholder in CMD (as separate arguments),
or are appended to it when CMD has none. Target: ours faster than theirs, wall-time ratio
ours/theirs below 1. `--per-file N` also times N of the files (spread over the corpus) with one
process per file for both commands, where start-up is nearly all of the time. For Sisimai:
`python bench/parse_reports.py --vs-command "perl bench/sisimai_parse.pl"`.
"""

from __future__ import annotations

import argparse
import compileall
import email
import email.policy
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fbl import classification  # noqa: E402
from fbl.parse import parse  # noqa: E402

TARGET_RATIO = 0.5
# Whole processes: ours must take less wall time than the other parser's.
PROCESS_TARGET_RATIO = 1.0
FILES_PLACEHOLDER = "{files}"
FIXTURES = ROOT.parent / "shared" / "fixtures" / "email"


class BenchError(RuntimeError):
    """The benchmark could not run (not a missed target)."""


def fixture_files(directory: Path) -> list[Path]:
    files = sorted(directory.glob("*/*.eml"))
    if not files:
        raise BenchError(f"no fixture messages under {directory}")
    return files


def load_messages(directory: Path) -> list[bytes]:
    return [path.read_bytes() for path in fixture_files(directory)]


def one_pass(function: Callable[[bytes], object], messages: list[bytes]) -> float:
    start = time.perf_counter()
    for raw in messages:
        function(raw)
    return time.perf_counter() - start


def bare(raw: bytes) -> object:
    return email.message_from_bytes(raw, policy=email.policy.default)


def measure(messages: list[bytes], seconds: float) -> tuple[int, float, float, list[float]]:
    """Alternating passes until each side has run `seconds`: (passes, baseline time, parse
    time, per-pass ratios)."""
    one_pass(bare, messages)  # warm-up: imports, regex compilation, caches
    one_pass(parse, messages)
    passes, baseline_time, parse_time, ratios = 0, 0.0, 0.0, []
    while baseline_time < seconds or parse_time < seconds:
        b = one_pass(bare, messages)
        # Each pass reads the corpus as new: no line remembered from the pass before.
        classification.forget_lines()
        p = one_pass(parse, messages)
        baseline_time += b
        parse_time += p
        ratios.append(b / p)
        passes += 1
    return passes, baseline_time, parse_time, ratios


def our_command(files: list[str]) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), "parse_report", *files]


def their_command(template: str, files: list[str]) -> list[str]:
    """`template` split as a shell would; the files replace a `{files}` word, or are appended."""
    words = shlex.split(template)
    if not words:
        raise BenchError("--vs-command is empty")
    if FILES_PLACEHOLDER not in words:
        return [*words, *files]
    out: list[str] = []
    for word in words:
        out.extend(files if word == FILES_PLACEHOLDER else [word])
    return out


@dataclass
class Side:
    """One command line's rounds: wall and CPU seconds (the process and everything it waited
    for) per round, and the output lines of the last round."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    lines: int = 0


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(command: list[str]) -> tuple[float, float, int]:
    """Wall and CPU time of one process, its output read through a pipe; its output lines."""
    cpu = children_cpu()
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=600)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace").strip()[-500:]
        raise BenchError(f"{shlex.join(command[:3])} ... exited {result.returncode}: {stderr}")
    return elapsed, children_cpu() - cpu, result.stdout.count(b"\n")


def compare_processes(
    ours: list[list[str]], theirs: list[list[str]], rounds: int
) -> tuple[Side, Side]:
    """`rounds` alternating rounds, each running every command of one side, then the other's
    (the side that goes first alternates too), after one untimed warm-up round."""

    def side(commands: list[list[str]], into: Side | None = None) -> None:
        timed = [run_once(command) for command in commands]
        if into is not None:
            into.wall.append(sum(t[0] for t in timed))
            into.cpu.append(sum(t[1] for t in timed))
            into.lines = sum(t[2] for t in timed)

    side(ours), side(theirs)  # warm-up: page cache
    our_side, their_side = Side(), Side()
    for number in range(rounds):
        if number % 2:
            side(theirs, their_side)
            side(ours, our_side)
        else:
            side(ours, our_side)
            side(theirs, their_side)
    return our_side, their_side


def compile_bytecode() -> None:
    """The project's .pyc files and compiled report rules (fbl/pattern_cache.py), as an
    installed service has them: with PYTHONDONTWRITEBYTECODE set, every run would compile our
    modules and rules anew and the figure would include that."""
    for package in ("fbl", "compliance"):
        compileall.compile_dir(ROOT / package, quiet=1)
    subprocess.run(
        [sys.executable, "-m", "fbl.pattern_cache"], cwd=ROOT, check=True, capture_output=True
    )


def spread_sample(files: list[str], count: int) -> list[str]:
    if count >= len(files):
        return list(files)
    step = len(files) / count
    return [files[int(i * step)] for i in range(count)]


def process_lines(label: str, files: int, ours: Side, theirs: Side) -> list[tuple[str, str]]:
    our_median, their_median = statistics.median(ours.wall), statistics.median(theirs.wall)
    ratio = our_median / their_median
    ratios = sorted(o / t for o, t in zip(ours.wall, theirs.wall, strict=True))
    verdict = "met" if ratio < PROCESS_TARGET_RATIO else "MISSED"
    rounds = len(ours.wall)
    return [
        (
            f"{label}: manage.py parse_report",
            f"{our_median:.3f} s (median of {rounds}), CPU {statistics.median(ours.cpu):.3f} s",
        ),
        (
            f"{label}: other command",
            f"{their_median:.3f} s (median of {rounds}), CPU {statistics.median(theirs.cpu):.3f} s",
        ),
        (f"{label}: output lines", f"ours {ours.lines}, theirs {theirs.lines} ({files} files)"),
        (
            f"{label}: ratio ours/theirs",
            f"{ratio:.2f} (rounds {ratios[0]:.2f} to {ratios[-1]:.2f})",
        ),
        (f"{label}: target", f"< {PROCESS_TARGET_RATIO:.2f}: {verdict}"),
    ]


def print_summary(title: str, lines: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in lines)
    bar = "=" * 78
    print(f"{bar}\nSUMMARY: {title}\n{bar}")
    for name, value in lines:
        print(f"{name.ljust(width)}  {value}")
    print(bar, flush=True)


def main_processes(args: argparse.Namespace) -> int:
    files = [str(path) for path in fixture_files(args.fixtures)]
    if args.limit:
        files = spread_sample(files, args.limit)
    print(f"ours:   {shlex.join(our_command(['FILE...']))}")
    print(f"theirs: {shlex.join(their_command(args.vs_command, ['FILE...']))}", flush=True)
    compile_bytecode()
    ours, theirs = compare_processes(
        [our_command(files)], [their_command(args.vs_command, files)], args.rounds
    )
    lines = process_lines("one process", len(files), ours, theirs)
    if args.per_file:
        sample = spread_sample(files, args.per_file)
        ours, theirs = compare_processes(
            [our_command([f]) for f in sample],
            [their_command(args.vs_command, [f]) for f in sample],
            args.rounds,
        )
        lines += process_lines("a process per file", len(sample), ours, theirs)
    print_summary("report parsing, whole processes", lines)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per side (default 2)")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES, help="fixture directory")
    parser.add_argument(
        "--vs-command",
        metavar="CMD",
        help="compare whole processes with this parser command line; the fixture paths replace "
        "a {files} word or are appended",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternating rounds with --vs-command (default 5)"
    )
    parser.add_argument(
        "--per-file",
        type=int,
        default=0,
        metavar="N",
        help="with --vs-command, also time N files with one process per file (default 0: not)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=0,
        metavar="N",
        help="with --vs-command, use only N of the files, spread over the corpus (default all)",
    )
    args = parser.parse_args(argv)
    if args.vs_command is not None:
        if args.rounds < 1:
            parser.error("--rounds must be at least 1")
        try:
            return main_processes(args)
        except (BenchError, OSError, subprocess.TimeoutExpired) as exc:
            print(f"BENCHMARK FAILED: {exc}", file=sys.stderr)
            return 1
    try:
        messages = load_messages(args.fixtures)
    except BenchError as exc:
        print(f"BENCHMARK FAILED: {exc}", file=sys.stderr)
        return 1

    passes, baseline_time, parse_time, ratios = measure(messages, args.seconds)
    count = passes * len(messages)
    baseline_rate = count / baseline_time
    parse_rate = count / parse_time
    ratio = parse_rate / baseline_rate
    ratios.sort()
    median = ratios[len(ratios) // 2]
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    size = sum(len(m) for m in messages)
    lines = [
        ("messages", f"{len(messages)} ({size / 1024:.0f} KiB), {passes} passes each"),
        ("baseline: email.message_from_bytes(default)", f"{baseline_rate:,.0f} msg/s"),
        ("fbl.parse.parse", f"{parse_rate:,.0f} msg/s"),
        ("ratio parse/baseline", f"{ratio:.2f} (median pass {median:.2f})"),
        ("target", f">= {TARGET_RATIO:.2f}: {verdict}"),
    ]
    print_summary("report parsing", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
