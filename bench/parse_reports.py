"""Report parsing throughput: `fbl.parse.parse` beside the bare stdlib parse of the same mail.

Every message in the shared fixture corpus (complaints, bounces, auto-replies) is parsed in
rounds, alternating the baseline, `email.message_from_bytes(raw, policy=email.policy.default)`,
with `fbl.parse.parse(raw)`, until each has run for about --seconds. Both rates come from the
same process on the same messages, so the ratio holds on a busy machine too.

Target (DESIGN.md, performance budgets): parse rate at least 0.5 of the baseline rate.
Needs no database. Run from anywhere: `python bench/parse_reports.py`.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fbl import classification  # noqa: E402
from fbl.parse import parse  # noqa: E402

TARGET_RATIO = 0.5
FIXTURES = ROOT.parent / "shared" / "fixtures" / "email"


class BenchError(RuntimeError):
    """The benchmark could not run (not a missed target)."""


def load_messages(directory: Path) -> list[bytes]:
    files = sorted(directory.glob("*/*.eml"))
    if not files:
        raise BenchError(f"no fixture messages under {directory}")
    return [path.read_bytes() for path in files]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per side (default 2)")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES, help="fixture directory")
    args = parser.parse_args(argv)
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
    width = max(len(name) for name, _ in lines)
    bar = "=" * 78
    print(f"{bar}\nSUMMARY: report parsing\n{bar}")
    for name, value in lines:
        print(f"{name.ljust(width)}  {value}")
    print(bar, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
