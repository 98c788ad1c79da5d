"""Single-address check under load: GET /api/v1/suppressions/check?address=A&stream=marketing
from concurrent clients at a fixed total rate (open loop), against gunicorn.

Each client owns one HTTP/1.1 connection (keep-alive asked for; reopened whenever the server
closes it) and sends its share of the rate on a fixed schedule. Latency is measured from the
time a request was *scheduled*, not from when it could be sent, so a slow answer that delays
the next request shows up in that request's latency too (no coordinated omission).
Addresses are drawn at random, half listed and half not; every answer is checked.

Then the request rate against its baseline (DESIGN.md): `wrk -t2 -c16` (closed loop, at
saturation) on the check and on a bare Django view doing one indexed lookup under the same
gunicorn (`GET /bench/bare-check`, bench/single_check_urls.py: the address hashed, one query by
the hash index, a JSON answer), in alternating rounds; medians of the rounds.

Target (DESIGN.md): the check's rate at least 0.8 of the bare view's. The open loop's p99 is
printed beside its first bar (< 5 ms at 800 req/s), for information.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import subprocess
import urllib.parse
from dataclasses import dataclass, field

import common

TARGET_RATIO = 0.8
FIRST_P99_MS = 5.0
SETTINGS = "bench.single_check_settings"
BARE_PATH = "/bench/bare-check"
DRAIN_LIMIT = 60.0
PATH = "/api/v1/suppressions/check"


def worker_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("a number or a comma-separated list: 3 or 2,3,4") from None
    if not counts or any(n <= 0 for n in counts):
        raise argparse.ArgumentTypeError("worker counts must be positive")
    return counts


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=common.positive_int, default=1_000_000,
                        help="suppression rows to load (default 1,000,000)")
    parser.add_argument("--clients", type=common.positive_int, default=16,
                        help="concurrent connections (default 16)")
    parser.add_argument("--rate", type=common.positive_int, default=800,
                        help="requests per second, all clients together (default 800)")
    parser.add_argument("--seconds", type=common.positive_int, default=20,
                        help="length of the measured open-loop run (default 20)")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="seconds of the same load before measuring (default 3)")
    parser.add_argument("--workers", type=worker_counts, default=[3],
                        help="gunicorn workers, or a comma-separated list to try each "
                             "(default 3; e.g. 2,3,4)")
    parser.add_argument("--wrk-seconds", type=common.positive_int, default=8,
                        help="length of each wrk run (default 8)")
    parser.add_argument("--rounds", type=common.positive_int, default=3,
                        help="wrk rounds of the check and the bare view each (default 3)")
    parser.add_argument("--no-wrk", action="store_true",
                        help="skip the rate against the bare view (no target verdict)")
    parser.add_argument("--threads", type=common.positive_int, default=None,
                        help="run gunicorn's gthread workers with this many threads each "
                        "(keeps connections alive); default: sync workers")
    parser.add_argument("--reuse-db", action="store_true",
                        help="keep the database if it already holds exactly --rows entries")
    parser.add_argument("--quiet-wait", type=float, default=180,
                        help="seconds to wait for other work on the machine to stop before "
                             "measuring (default 180; 0: do not wait)")
    parser.add_argument("--noise", type=float, default=0.25,
                        help="measure again when other work on the machine used more than "
                             "this many cores during the run (default 0.25) ...")
    parser.add_argument("--attempts", type=common.positive_int, default=3,
                        help="... up to this many runs per worker count, keeping the least "
                             "disturbed (default 3)")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


@dataclass
class Probe:
    request: bytes
    listed: bool


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)  # seconds, from the scheduled time
    errors: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    reconnects: int = 0
    scheduled: int = 0
    failed: int = 0  # no answer at all (connection errors)
    first_scheduled: float = 0.0
    last_done: float = 0.0


def make_probes(port: int, key: str, rows: int, count: int, seed: int) -> list[Probe]:
    rng = random.Random(seed)
    probes = []
    for n in range(count):
        listed = n % 2 == 0
        i = rng.randint(1, rows) if listed else rng.randint(1, 100 * rows)
        address = common.listed_address(i) if listed else common.unlisted_address(i)
        query = urllib.parse.urlencode({"address": address, "stream": "marketing"})
        request = (f"GET {PATH}?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                   f"Authorization: Bearer {key}\r\nAccept: application/json\r\n"
                   f"Connection: keep-alive\r\n\r\n").encode()
        probes.append(Probe(request, listed))
    rng.shuffle(probes)
    return probes


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: bytes) -> tuple[int, bool, bytes]:
    """Send one request, read one response: (status, server closes, body)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    closes = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and value.strip().lower() == "close":
            closes = True
    body = await reader.readexactly(length) if length else b""
    return status, closes, body


async def _client(port: int, probes: list[Probe], interval: float, start: float, slots: int,
                  results: Results | None, rng: random.Random) -> None:
    """Send at start, start + interval, ... (`slots` requests); each timed from its slot."""
    loop = asyncio.get_running_loop()
    reader = writer = None
    try:
        for slot in range(slots):
            scheduled = start + slot * interval
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            probe = probes[rng.randrange(len(probes))]
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    if results is not None:
                        results.reconnects += 1
                status, closes, body = await _exchange(reader, writer, probe.request)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                if results is not None:
                    results.errors.append(f"{type(exc).__name__}: {exc}")
                    results.failed += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            done = loop.time()
            if results is not None:
                results.latencies.append(done - scheduled)
                results.last_done = max(results.last_done, done)
                if status != 200:
                    results.errors.append(f"HTTP {status}: {body[:200]!r}")
                elif (b'"suppressed":true' in body) != probe.listed:
                    results.wrong.append(body[:200].decode("utf-8", "replace"))
            if closes:
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


async def open_loop(port: int, probes: list[Probe], *, clients: int, rate: float,
                    seconds: float, measure: bool, seed: int) -> Results | None:
    """Every client sends one request every clients/rate seconds, the clients staggered evenly
    over one interval; stops scheduling after `seconds`."""
    loop = asyncio.get_running_loop()
    interval = clients / rate
    results = Results() if measure else None
    start = loop.time() + 0.05
    if results is not None:
        results.first_scheduled = start
    tasks = []
    for index in range(clients):
        offset = interval * index / clients
        slots = math.ceil((seconds - offset) / interval - 1e-9)
        if results is not None:
            results.scheduled += slots
        tasks.append(asyncio.ensure_future(_client(
            port, probes, interval, start + offset, slots, results,
            random.Random(seed * 1000 + index))))
    # A server that falls far behind would keep the run going for ever: whatever is still
    # unanswered DRAIN_LIMIT seconds after the last slot counts as unanswered (infinite latency).
    done, pending = await asyncio.wait(tasks, timeout=seconds + DRAIN_LIMIT)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        task.result()  # a bug in the client itself must not pass unnoticed
    return results


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(-(-fraction * len(sorted_values) // 1)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def run_wrk(port: int, key: str, seconds: int, clients: int, *, bare: bool = False) -> dict:
    """wrk on the check (or, `bare`, on the bare view) for a listed address."""
    query = urllib.parse.urlencode({"address": common.listed_address(1), "stream": "marketing"})
    url = f"http://127.0.0.1:{port}{BARE_PATH if bare else PATH}?{query}"
    cmd = ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--latency",
           "-H", f"Authorization: Bearer {key}", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0:
        raise common.BenchError(f"wrk exited {proc.returncode}: {proc.stderr}")
    out = proc.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors:.*", out)
    if not rps or not p99:
        raise common.BenchError(f"could not read wrk's output:\n{out}")
    return {
        "rps": float(rps.group(1)),
        "p99_ms": float(p99.group(1)) * _WRK_UNITS[p99.group(2)],
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sock.group(0) if sock else "",
        "raw": out,
    }


def measure(workers: int, args, key: str) -> dict:
    extra = ("--worker-class", "gthread", "--threads", str(args.threads)) if args.threads else ()
    with common.gunicorn(workers, extra_args=extra,
                         env={"DJANGO_SETTINGS_MODULE": SETTINGS}) as server:
        probes = make_probes(server.port, key, args.rows, 4096, args.seed)
        best = None
        for attempt in range(1, args.attempts + 1):
            common.wait_quiet(max_wait=args.quiet_wait)
            if args.warmup > 0:
                asyncio.run(open_loop(server.port, probes, clients=args.clients,
                                      rate=args.rate, seconds=args.warmup, measure=False,
                                      seed=args.seed + 1))
            common.log(f"open loop: {args.clients} clients, {args.rate} req/s, "
                       f"{args.seconds}s (attempt {attempt})")
            probe_before = common.cpu_probe()
            meter = common.CpuMeter(server)
            meter.start()
            results = asyncio.run(open_loop(server.port, probes, clients=args.clients,
                                            rate=args.rate, seconds=args.seconds,
                                            measure=True, seed=args.seed))
            cpu = meter.stop()
            cpu["probes"] = (probe_before, common.cpu_probe())
            if best is None or cpu["other_cores"] < best[1]["other_cores"]:
                best = (results, cpu)
            if cpu["other_cores"] <= args.noise:
                break
            common.log(f"other work used {cpu['other_cores']:.2f} cores during the run")
        results, cpu = best
        if results.wrong:
            raise common.BenchError(f"{len(results.wrong)} wrong answers, e.g. "
                                    f"{results.wrong[0]}")
        if not results.latencies:
            raise common.BenchError(f"no answers at all; errors: {results.errors[:3]}")
        wrk = None
        if not args.no_wrk:
            wrk = rate_against_bare(server.port, key, args)
    unanswered = max(0, results.scheduled - len(results.latencies) - results.failed)
    # Requests never answered within the drain limit count as infinitely slow.
    latencies = sorted(results.latencies) + [math.inf] * unanswered
    elapsed = results.last_done - results.first_scheduled
    out = {
        "workers": workers,
        "count": len(results.latencies),
        "unanswered": unanswered,
        "errors": len(results.errors),
        "error_sample": results.errors[:3],
        "connections": results.reconnects,
        "rate": len(results.latencies) / elapsed if elapsed > 0 else 0.0,
        "p50": percentile(latencies, 0.50) * 1000,
        "p90": percentile(latencies, 0.90) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "max": latencies[-1] * 1000,
        "wrk": wrk,
        # CPU milliseconds per answered request, and the machine's load (cores busy)
        "cpu_ms": {name: cpu[name] * 1000 / len(results.latencies)
                   for name in ("workers", "postgres", "client", "machine")},
        "cores_busy": cpu["machine"] / cpu["wall"],
        # Cores used meanwhile by anything else on this (shared) machine.
        "other_cores": cpu["other_cores"],
        "probes": cpu["probes"],
    }
    common.log(f"-w {workers}: p50 {out['p50']:.2f} p90 {out['p90']:.2f} p99 {out['p99']:.2f} "
               f"max {out['max']:.1f} ms at {out['rate']:.0f} req/s; {out['errors']} errors; "
               f"{out['connections']} connections opened"
               + (f"; closed loop: check {wrk['check']['rps']:.0f}, bare view "
                  f"{wrk['bare']['rps']:.0f} req/s" if wrk else ""))
    return out


def rate_against_bare(port: int, key: str, args) -> dict:
    """Closed-loop rates of the check and of the bare view, in alternating rounds (the side
    that goes first alternates), after one short run of each; medians and every round."""
    for bare in (True, False):
        run_wrk(port, key, 2, args.clients, bare=bare)
    rounds: dict[str, list[dict]] = {"check": [], "bare": []}
    common.wait_quiet(max_wait=args.quiet_wait)
    for number in range(args.rounds):
        order = ("bare", "check") if number % 2 == 0 else ("check", "bare")
        for name in order:
            common.log(f"wrk -t2 -c{args.clients} -d{args.wrk_seconds}s on the {name} "
                       f"(round {number + 1})")
            rounds[name].append(run_wrk(port, key, args.wrk_seconds, args.clients,
                                        bare=name == "bare"))
    return {
        name: {
            "rps": common.median([r["rps"] for r in runs]),
            "p99_ms": common.median([r["p99_ms"] for r in runs]),
            "rounds": [r["rps"] for r in runs],
            "non2xx": sum(r["non2xx"] for r in runs),
            "socket_errors": "; ".join(r["socket_errors"] for r in runs if r["socket_errors"]),
        }
        for name, runs in rounds.items()
    }


def main(args: argparse.Namespace) -> int:
    _, load_seconds = common.prepare_loaded_database(args.rows, reuse=args.reuse_db)
    key = common.create_api_key()
    runs = [measure(workers, args, key) for workers in args.workers]

    lines = [("rows in table", f"{args.rows:,}"),
             ("load", f"{args.clients} clients, {args.rate} req/s offered (open loop), "
                      f"{args.seconds}s measured after {args.warmup:g}s warm-up")]
    if load_seconds is not None:
        lines.append(("load time", f"{load_seconds:.1f} s"))
    failed = False
    for run in runs:
        tag = f"gunicorn -w {run['workers']}"
        lines.append((f"{tag}: latency",
                      f"p50 {run['p50']:.2f} ms  p90 {run['p90']:.2f} ms  "
                      f"p99 {run['p99']:.2f} ms  max {run['max']:.1f} ms"))
        lines.append((f"{tag}: p99, first bar",
                      f"{run['p99']:.2f} ms against < {FIRST_P99_MS:g} ms at {args.rate} req/s "
                      f"(information)"))
        lines.append((f"{tag}: achieved",
                      f"{run['rate']:.0f} req/s of {args.rate} offered, {run['count']:,} "
                      f"answers, {run['errors']} errors, {run['unanswered']} unanswered after "
                      f"{DRAIN_LIMIT:g} s, {run['connections']:,} connections"))
        cpu = run["cpu_ms"]
        lines.append((f"{tag}: CPU per request",
                      f"gunicorn {cpu['workers']:.2f} ms, PostgreSQL {cpu['postgres']:.2f} ms, "
                      f"this client {cpu['client']:.2f} ms; machine {cpu['machine']:.2f} ms "
                      f"({run['cores_busy']:.2f} of {os.cpu_count()} cores busy, "
                      f"{run['other_cores']:.2f} of them by other work); CPU speed probe "
                      f"{run['probes'][0]:.0f}/{run['probes'][1]:.0f} ms before/after"))
        if run["errors"]:
            lines.append((f"{tag}: errors", "; ".join(run["error_sample"])))
            failed = True
        if run["wrk"]:
            for name, label in (("check", "check"), ("bare", "bare lookup view")):
                wrk = run["wrk"][name]
                lines.append((f"{tag}: {label}, closed loop",
                              f"{wrk['rps']:.0f} req/s (rounds "
                              f"{', '.join(f'{r:.0f}' for r in wrk['rounds'])}), "
                              f"p99 {wrk['p99_ms']:.2f} ms"
                              + (f", {wrk['non2xx']} non-2xx" if wrk["non2xx"] else "")
                              + (f", {wrk['socket_errors']}" if wrk["socket_errors"] else "")))
                if wrk["non2xx"]:
                    failed = True
            pairs = [c / b for c, b in zip(run["wrk"]["check"]["rounds"],
                                           run["wrk"]["bare"]["rounds"], strict=True)]
            lines.append((f"{tag}: each round's pair",
                          f"{', '.join(f'{p:.2f}' for p in pairs)}; median "
                          f"{common.median(pairs):.2f} (information)"))
            ratio = run["wrk"]["check"]["rps"] / run["wrk"]["bare"]["rps"]
            lines.append((f"{tag}: ratio check / bare view",
                          f"{ratio:.2f}  (target >= {TARGET_RATIO}: "
                          f"{common.verdict(ratio, TARGET_RATIO, at_most=False)})"))
    common.print_summary("single check", lines)
    if failed:
        raise common.BenchError("requests failed during the run (see the summary)")
    return 0


if __name__ == "__main__":
    common.run_main(main, parse_args)
