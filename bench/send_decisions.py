"""Send decisions: POST /api/v1/send-decisions with 10,000 addresses against a large suppression
list and consent ledger, beside the batch check (POST /api/v1/suppressions/check) of the same
addresses on the same data, in the same gunicorn and the same run.

Data: --suppressions entries (bench/common.py's load: `user{i}@example{i % 1000}.com`, the
default tenant's commercial scope, reason unsubscribe) and --consents consent records with their
current states for the default tenant's `marketing` stream (`nobody{i}@example{i % 1000}.com`,
basis consent; every tenth one withdrawn), written in SQL over generate_series with the hash made
by pgcrypto, as the suppression load does.

The batch: half listed in the suppression list, a quarter with a consent record (a tenth of
those withdrawn), a quarter with neither. The default tenant's jurisdiction is EU, so the
answer denies the suppressed, the withdrawn and those without consent, and allows the rest.

Each round posts the batch check and the send decisions back to back (medians over --repeat
rounds, after a warm-up); rounds disturbed by other work on the machine are set aside and run
again, as in batch_check.py.

Target: send-decision throughput >= 0.5 x batch-check throughput.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import random
import threading
import time

import common

TARGET_RATIO = 0.5
WITHDRAWN_EVERY = 10  # consent record i is a withdrawal when i % WITHDRAWN_EVERY == 0

CONSENT_SQL = """
WITH records AS (
    INSERT INTO consent_consentrecord (
        actor_label, via, address, address_hash, action, basis, method, jurisdiction,
        occurred_at, recorded_at, user_agent, page_url, form_id, privacy_notice_version, cause,
        tenant_id, stream_id)
    SELECT 'bench', 'import', a.address,
           hmac(convert_to(a.address, 'UTF8'), convert_to(%(key)s, 'UTF8'), 'sha256'),
           CASE WHEN i %% %(every)s = 0 THEN 'withdrawn' ELSE 'granted' END, 'consent', 'import',
           'EU', %(base)s::timestamptz - make_interval(secs => i), %(base)s::timestamptz,
           '', '', '', '', '', %(tenant)s, %(stream)s
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i,
         LATERAL (SELECT 'nobody' || i || '@example' || (i %% 1000) || '.com' AS address) AS a
    RETURNING id, tenant_id, stream_id, address_hash, action, basis, occurred_at
)
INSERT INTO consent_consentstate (tenant_id, address_hash, stream_id, action, basis, since,
                                  record_id)
SELECT tenant_id, address_hash, stream_id, action, basis, occurred_at, id FROM records
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--suppressions",
        type=common.positive_int,
        default=10_000_000,
        help="suppression entries to load (default 10,000,000)",
    )
    parser.add_argument(
        "--consents",
        type=common.positive_int,
        default=1_000_000,
        help="consent records (and states) to load (default 1,000,000)",
    )
    parser.add_argument(
        "--batch",
        type=common.positive_int,
        default=10_000,
        help="addresses per request (default 10,000)",
    )
    parser.add_argument(
        "--repeat",
        type=common.positive_int,
        default=5,
        help="timed rounds; the median is reported (5)",
    )
    parser.add_argument(
        "--workers", type=common.positive_int, default=2, help="gunicorn workers (default 2)"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=180,
        help="seconds to wait for other work on the machine to stop before "
        "measuring (default 180; 0: do not wait)",
    )
    parser.add_argument(
        "--noise",
        type=float,
        default=0.25,
        help="set aside a round during which other work on the machine used "
        "more than this many cores (default 0.25)",
    )
    parser.add_argument(
        "--round-limit",
        type=float,
        default=600,
        help="seconds to keep replacing disturbed rounds (default 600)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed for the batch")
    return parser.parse_args(argv)


def consent_address(i: int) -> str:
    """The i-th consent record's address (1-based); CONSENT_SQL uses the same pattern."""
    return common.unlisted_address(i)


def load_consents(count: int, *, tenant_id: int, stream_id: int) -> float:
    """`count` consent records with their states, in two sessions (one per core)."""
    began = time.monotonic()
    with common.connect() as conn:
        base = conn.execute("SELECT now()").fetchone()[0]
    halves = [(1, count // 2), (count // 2 + 1, count)] if count >= 1000 else [(1, count)]
    errors: list[BaseException] = []

    def insert(first: int, last: int) -> None:
        try:
            with common.connect(autocommit=True) as conn:
                conn.execute("SET synchronous_commit = off")
                conn.execute(
                    CONSENT_SQL,
                    {
                        "key": common.ADDRESS_HASH_KEY,
                        "every": WITHDRAWN_EVERY,
                        "base": base,
                        "tenant": tenant_id,
                        "stream": stream_id,
                        "first": first,
                        "last": last,
                    },
                )
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=insert, args=h) for h in halves if h[0] <= h[1]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise common.BenchError(f"consent load failed: {errors[0]}") from errors[0]
    with common.connect(autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE consent_consentrecord")
        conn.execute("VACUUM ANALYZE consent_consentstate")
        states = common.table_rows(conn, "consent_consentstate")
        if states != count:
            raise common.BenchError(f"loaded {states} consent states, expected {count}")
        address, digest = conn.execute(
            "SELECT address, address_hash FROM consent_consentrecord ORDER BY id LIMIT 1"
        ).fetchone()
        if bytes(digest) != common.python_hash(address):
            raise common.BenchError(f"consent hash of {address!r} differs from address_hash")
    seconds = time.monotonic() - began
    common.log(f"loaded {count:,} consent records and states in {seconds:.1f}s")
    return seconds


def make_batch(args) -> tuple[list[str], dict[str, str | None]]:
    """The batch and what each address should get: a denial reason, or None (allowed)."""
    rng = random.Random(args.seed)
    listed_count = min(args.batch // 2, args.suppressions)
    consented_count = min((args.batch - listed_count) // 2, args.consents)
    other_count = args.batch - listed_count - consented_count
    expected: dict[str, str | None] = {}
    for i in rng.sample(range(1, args.suppressions + 1), listed_count):
        expected[common.listed_address(i)] = "suppressed"
    for i in rng.sample(range(1, args.consents + 1), consented_count):
        expected[consent_address(i)] = "consent_withdrawn" if i % WITHDRAWN_EVERY == 0 else None
    first_unknown = args.consents + 1
    for i in rng.sample(range(first_unknown, first_unknown + 10 * args.batch), other_count):
        expected[consent_address(i)] = "no_consent"
    batch = list(expected)
    rng.shuffle(batch)
    return batch, expected


def post(port: int, key: str, path: str, body: bytes) -> tuple[float, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        began = time.perf_counter()
        conn.request(
            "POST",
            path,
            body=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - began
    finally:
        conn.close()
    if response.status != 200:
        raise common.BenchError(f"{path} answered {response.status}: {payload[:500]!r}")
    return elapsed, json.loads(payload)


CHECK = "/api/v1/suppressions/check"
DECIDE = "/api/v1/send-decisions"


def main(args: argparse.Namespace) -> int:
    tenant_id, load_seconds = common.prepare_loaded_database(args.suppressions)
    with common.connect() as conn:
        row = conn.execute(
            "SELECT id, kind FROM compliance_stream WHERE tenant_id = %s AND slug = 'marketing'",
            (tenant_id,),
        ).fetchone()
        jurisdiction = conn.execute(
            "SELECT jurisdiction FROM compliance_tenant WHERE id = %s", (tenant_id,)
        ).fetchone()[0]
    if row is None or row[1] != "commercial":
        raise common.BenchError(f"no commercial 'marketing' stream for tenant {tenant_id}")
    if jurisdiction != "EU":
        raise common.BenchError(f"the default tenant's jurisdiction is {jurisdiction}, not EU")
    consent_seconds = load_consents(args.consents, tenant_id=tenant_id, stream_id=row[0])
    batch, expected = make_batch(args)
    wanted = collections.Counter(expected.values())
    common.log(f"batch of {len(batch):,}: {dict(wanted)}")
    proc = common.manage(
        "create_api_key", "bench-decisions", "--permissions", "suppression:read,consent:read"
    )
    key = proc.stdout.strip().splitlines()[-1].strip()
    body = json.dumps({"stream": "marketing", "addresses": batch}).encode()

    def check_answers(checked: dict, decided: dict) -> None:
        suppressed = {s["address"] for s in checked["suppressed"]}
        if suppressed != {a for a, r in expected.items() if r == "suppressed"}:
            raise common.BenchError(f"batch check reported {len(suppressed)} suppressed")
        got = {d["address"]: d["reason"] for d in decided["denied"]}
        want = {a: r for a, r in expected.items() if r is not None}
        if got != want or decided["allowed"] != wanted[None] or decided["invalid"]:
            raise common.BenchError(
                f"send decisions: {collections.Counter(got.values())}, allowed "
                f"{decided['allowed']}, invalid {len(decided['invalid'])}; expected {dict(wanted)}"
            )

    times: dict[str, list[float]] = {"check": [], "decide": []}
    with common.gunicorn(args.workers) as server:
        for _ in range(2):  # every worker connects, caches and runs both paths
            threads = [
                threading.Thread(target=post, args=(server.port, key, path, body))
                for path in (CHECK, DECIDE)
                for _ in range(args.workers)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        common.wait_quiet(max_wait=args.quiet_wait)
        probes = [common.cpu_probe()]
        noisy: list[float] = []
        deadline = time.monotonic() + args.round_limit
        while len(times["check"]) < args.repeat:
            meter = common.CpuMeter(server)
            meter.start()
            check_time, checked = post(server.port, key, CHECK, body)
            decide_time, decided = post(server.port, key, DECIDE, body)
            cpu = meter.stop()
            check_answers(checked, decided)
            if cpu["other_cores"] <= args.noise:
                times["check"].append(check_time)
                times["decide"].append(decide_time)
            else:
                noisy.append(cpu["other_cores"])
                if time.monotonic() > deadline:
                    common.log(
                        f"only {len(times['check'])} undisturbed rounds within "
                        f"{args.round_limit:g}s"
                    )
                    break
        probes.append(common.cpu_probe())
    if not times["check"]:
        raise common.BenchError(
            f"no round without other work (> {args.noise} cores) on the "
            f"machine within {args.round_limit:g}s; try later"
        )
    for name, values in times.items():
        common.log(f"{name}: {[f'{t * 1000:.1f}' for t in values]} ms")
    check, decide = common.median(times["check"]), common.median(times["decide"])

    def rate(seconds: float) -> str:
        return f"{len(batch) / seconds:>10,.0f} addresses/s  ({seconds * 1000:.1f} ms per batch)"

    ratio = check / decide
    lines = [
        ("suppressions in the list", f"{args.suppressions:,}"),
        ("consent records (states)", f"{args.consents:,}"),
        (
            "batch",
            f"{len(batch):,} addresses: {wanted['suppressed']:,} suppressed, "
            f"{wanted[None]:,} consented, {wanted['consent_withdrawn']:,} withdrawn, "
            f"{wanted['no_consent']:,} without consent (EU); median of "
            f"{len(times['check'])} rounds",
        ),
    ]
    if load_seconds is not None:
        lines.append(
            ("load time", f"suppressions {load_seconds:.1f} s, consents {consent_seconds:.1f} s")
        )
    lines += [
        (f"batch check (gunicorn -w {args.workers})", rate(check)),
        (f"send decisions (gunicorn -w {args.workers})", rate(decide)),
        (
            "ratio send decisions / batch check",
            f"{ratio:.2f}  (target >= {TARGET_RATIO}: "
            f"{common.verdict(ratio, TARGET_RATIO, at_most=False)})",
        ),
        (
            "other work on the machine",
            f"{len(times['check'])} rounds used; {len(noisy)} rounds set aside because other work "
            f"used more than {args.noise:g} of {os.cpu_count()} cores",
        ),
        ("CPU speed probe", f"{probes[0]:.0f} ms before, {probes[1]:.0f} ms after"),
        ("correctness", "every denial and its reason as expected: ok"),
    ]
    common.print_summary("send decisions", lines)
    return 0


if __name__ == "__main__":
    common.run_main(main, parse_args)
