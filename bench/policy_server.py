"""Postfix policy server throughput: recipient lookups per second through
`manage.py run_policy_server` against a 1,000,000-row suppression list on PostgreSQL, beside raw
single-row lookups over one psycopg connection, measured in the same run on the same data.

Raw baseline: one psycopg 3 connection, hashes computed beforehand, one query per address
(prepared after the first executions, as psycopg does by default), rows fetched into Python:
  SELECT scope_key, reason, created_at FROM suppression_suppression
  WHERE address_hash = %s AND scope_key = ANY(%s) AND lifted_at IS NULL AND ...
Policy server: several asyncio clients, each on its own connection, each keeping a window of
pipelined requests in flight. A request carries the attributes Postfix 3.7 sends at RCPT TO; half
of the recipients are listed and every answer is checked (REJECT for listed, DUNNO otherwise).

Target: policy server >= 0.5 x raw.

Runs against the PostgreSQL at 127.0.0.1:5432 (user postgres) in its own database `bench_policy`,
which it drops and creates (use --reuse-db to keep a loaded one between runs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from suppression import rules  # noqa: E402
from suppression.addresses import address_hash, normalise  # noqa: E402

TARGET_RATIO = 0.5
DB_NAME = "bench_policy"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DSN = f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}"
PYTHON = ROOT / ".venv" / "bin" / "python"
TABLE = "suppression_suppression"

# Benchmark-only secrets: never used anywhere else.
SECRET_KEY = "bench-policy-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
ADDRESS_HASH_KEY = "bench-policy-address-hash-key-0123456789"
ENV = {
    "DEBUG": "false",
    "SECRET_KEY": SECRET_KEY,
    "ADDRESS_HASH_KEY": ADDRESS_HASH_KEY,
    "UNSUBSCRIBE_TOKEN_KEYS": "1:bench-policy-unsubscribe-token-key-0123456789",
    "UNSUBSCRIBE_BASE_URL": "https://bench.example.com",
    "ALLOWED_HOSTS": "127.0.0.1",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
    "LOG_LEVEL": "WARNING",
    "DJANGO_SETTINGS_MODULE": "compliance.settings",
    "POLICY_DEFAULT_STREAM": "default/marketing",
}

LOAD_SQL = f"""
INSERT INTO {TABLE} (
    tenant_id, scope, stream_id, topic_id, scope_key, address_hash, address, reason, origin,
    evidence_type_id, evidence_id, evidence_note, created_at, updated_at, expires_at, lifted_at)
SELECT %(tenant_id)s, 'commercial', NULL, NULL, %(scope_key)s,
       hmac(convert_to(a.address, 'UTF8'), convert_to(%(key)s, 'UTF8'), 'sha256'),
       a.address, 'unsubscribe', 'import', NULL, '', '', now(), now(), NULL, NULL
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i,
     LATERAL (SELECT 'user' || i || '@example' || (i %% 1000) || '.com' AS address) AS a
"""

RAW_SQL = f"""
SELECT scope_key, reason, created_at FROM {TABLE}
WHERE address_hash = %s AND scope_key = ANY(%s)
  AND lifted_at IS NULL AND (expires_at IS NULL OR expires_at > now())
"""

# What Postfix 3.7 sends at RCPT TO (SMTPD_POLICY_README, "Protocol description").
REQUEST_TEMPLATE = (
    "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
    "client_address=192.0.2.10\nclient_name=app1.example.net\n"
    "reverse_client_name=app1.example.net\nclient_port=40312\nhelo_name=app1.example.net\n"
    "sender=news@example.net\nrecipient={recipient}\nrecipient_count=0\nqueue_id=\n"
    "instance=4d2f.6751c3a1.5e2b1.0\nsize=0\netrn_domain=\nstress=\nsasl_method=\n"
    "sasl_username=\nsasl_sender=\nccert_subject=\nccert_issuer=\nccert_fingerprint=\n"
    "ccert_pubkey_fingerprint=\nencryption_protocol=\nencryption_cipher=\n"
    "encryption_keysize=0\npolicy_context=\nserver_address=127.0.0.1\nserver_port=25\n"
    "compatibility_level=3.6\nmail_version=3.7.11\n\n"
)


class BenchError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def listed(i: int) -> str:
    return f"user{i}@example{i % 1000}.com"


def unlisted(i: int) -> str:
    return f"nobody{i}@example{i % 1000}.com"


def python_hash(address: str) -> bytes:
    return address_hash(normalise(address), ADDRESS_HASH_KEY.encode())


# --- the database ---------------------------------------------------------------------------


def manage(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(PYTHON), "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise BenchError(f"manage.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def prepare_database(rows: int, *, reuse: bool) -> tuple[int, int]:
    """(default tenant id, marketing stream id) of a database holding `rows` listed entries."""
    if reuse:
        with contextlib.suppress(psycopg.OperationalError), psycopg.connect(DSN) as conn:
            count = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
            if count == rows:
                log(f"reusing {DB_NAME} with {count:,} rows")
                return stream_ids()
            log(f"cannot reuse {DB_NAME}: {count:,} rows; loading afresh")
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
    log(f"database {DB_NAME} created; migrating")
    manage("migrate", "--noinput")
    tenant_id, stream_id = stream_ids()
    began = time.monotonic()
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        step = 250_000
        for first in range(1, rows + 1, step):
            conn.execute(
                LOAD_SQL,
                {
                    "tenant_id": tenant_id,
                    "scope_key": rules.scope_key(tenant_id, rules.COMMERCIAL),
                    "key": ADDRESS_HASH_KEY,
                    "first": first,
                    "last": min(rows, first + step - 1),
                },
            )
        conn.execute(f"VACUUM ANALYZE {TABLE}")
        verify_sample(conn, rows)
    log(f"loaded {rows:,} rows in {time.monotonic() - began:.1f}s (hashes verified)")
    return tenant_id, stream_id


def stream_ids() -> tuple[int, int]:
    with psycopg.connect(DSN) as conn:
        row = conn.execute(
            "SELECT t.id, s.id FROM compliance_tenant t JOIN compliance_stream s "
            "ON s.tenant_id = t.id WHERE t.slug = 'default' AND s.slug = 'marketing'"
        ).fetchone()
    if row is None:
        raise BenchError("no default/marketing stream after migrate")
    return row


def verify_sample(conn: psycopg.Connection, rows: int, sample: int = 50) -> None:
    """SQL's HMAC must equal the application's address_hash(normalise(address))."""
    rng = random.Random(3)
    for i in {1, rows, *(rng.randint(1, rows) for _ in range(sample))}:
        found = conn.execute(
            f"SELECT address_hash FROM {TABLE} WHERE address = %s", (listed(i),)
        ).fetchone()
        if found is None or bytes(found[0]) != python_hash(listed(i)):
            raise BenchError(f"row for {listed(i)}: SQL hash differs from address_hash")


# --- what is measured -------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    recipient: str
    digest: bytes
    listed: bool


def make_probes(rows: int, count: int, seed: int) -> list[Probe]:
    rng = random.Random(seed)
    probes = []
    for n in range(count):
        i = rng.randint(1, rows)
        address = listed(i) if n % 2 == 0 else unlisted(i)
        probes.append(Probe(address, python_hash(address), n % 2 == 0))
    rng.shuffle(probes)
    return probes


def raw_rate(probes: list[Probe], keys: list[str], seconds: float) -> float:
    """Single-row lookups per second over one connection, answers checked."""
    with psycopg.connect(DSN, autocommit=True) as conn, conn.cursor() as cursor:
        for probe in probes[:200]:  # warm up and let psycopg prepare the statement
            cursor.execute(RAW_SQL, (probe.digest, keys))
            cursor.fetchall()
        done = 0
        began = time.perf_counter()
        deadline = began + seconds
        while time.perf_counter() < deadline:
            for probe in probes[done % len(probes) : done % len(probes) + 500]:
                cursor.execute(RAW_SQL, (probe.digest, keys))
                if bool(cursor.fetchall()) != probe.listed:
                    raise BenchError(f"raw lookup of {probe.recipient} gave the wrong answer")
                done += 1
        return done / (time.perf_counter() - began)


@contextlib.contextmanager
def policy_server(threads: int):
    errors = tempfile.TemporaryFile()  # a file, not a pipe nobody reads: logging never blocks
    process = subprocess.Popen(
        [str(PYTHON), "manage.py", "run_policy_server", "--port", "0", "--threads", str(threads)],
        cwd=ROOT,
        env={**os.environ, **ENV},
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        start_new_session=True,
    )
    try:
        line = process.stdout.readline()  # "listening on HOST:PORT" once bound
        if not line.startswith("listening on "):
            process.kill()
            errors.seek(0)
            raise BenchError(f"the policy server did not start: {line}{errors.read().decode()}")
        yield process, int(line.rsplit(":", 1)[1])
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        errors.close()


async def _client(port: int, probes: list[Probe], window: int, stop_at: float, counts: list[int]):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    requests = [REQUEST_TEMPLATE.format(recipient=p.recipient).encode() for p in probes]
    position = 0
    try:
        while time.perf_counter() < stop_at:
            batch = [(position + k) % len(probes) for k in range(window)]
            position += window
            writer.write(b"".join(requests[k] for k in batch))
            for k in batch:
                answer = await reader.readuntil(b"\n\n")
                if answer.startswith(b"action=REJECT") != probes[k].listed:
                    raise BenchError(f"{probes[k].recipient}: wrong answer {answer!r}")
            counts[0] += window
    finally:
        writer.close()


async def _drive(port: int, probes: list[Probe], clients: int, window: int, seconds: float):
    counts = [0]
    began = time.perf_counter()
    share = len(probes) // clients
    await asyncio.wait_for(
        asyncio.gather(
            *(
                _client(port, probes[c * share : (c + 1) * share], window, began + seconds, counts)
                for c in range(clients)
            )
        ),
        timeout=seconds + 60,
    )
    return counts[0] / (time.perf_counter() - began)


def server_rate(port: int, probes: list[Probe], *, clients: int, window: int, seconds: float):
    asyncio.run(_drive(port, probes, clients, window, min(2.0, seconds)))  # warm up
    return asyncio.run(_drive(port, probes, clients, window, seconds))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="each measured run")
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections")
    parser.add_argument("--window", type=int, default=16, help="pipelined requests per client")
    parser.add_argument(
        "--postfix-clients",
        type=int,
        default=32,
        help="connections of the Postfix-like run (one request at a time each; 0 skips it)",
    )
    parser.add_argument("--threads", type=int, default=4, help="the server's database threads")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is kept")
    parser.add_argument("--reuse-db", action="store_true")
    parser.add_argument(
        "--time-limit", type=int, default=1800, help="give up after this many seconds"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGALRM, _out_of_time)
    signal.alarm(args.time_limit)

    tenant_id, stream_id = prepare_database(args.rows, reuse=args.reuse_db)
    keys = list(
        rules.blocking_keys(tenant_id=tenant_id, stream_id=stream_id, commercial=True).any_reason
    )
    probes = make_probes(args.rows, 40_000, seed=1)

    raws, pipelined, one_at_a_time, server_cpu = [], [], [], []
    with policy_server(args.threads) as (process, port):
        log(f"policy server pid {process.pid} on 127.0.0.1:{port}, {args.threads} threads")
        for run in range(args.repeat):
            raws.append(raw_rate(probes, keys, args.seconds))
            before = cpu_seconds(process.pid)
            pipelined.append(
                server_rate(
                    port, probes, clients=args.clients, window=args.window, seconds=args.seconds
                )
            )
            server_cpu.append((cpu_seconds(process.pid) - before) / args.seconds)
            if args.postfix_clients:
                one_at_a_time.append(
                    server_rate(
                        port, probes, clients=args.postfix_clients, window=1, seconds=args.seconds
                    )
                )
            log(
                f"run {run + 1}: raw {raws[-1]:,.0f}/s, policy server {pipelined[-1]:,.0f}/s"
                + (f", one at a time {one_at_a_time[-1]:,.0f}/s" if one_at_a_time else "")
            )
    raw, policy = max(raws), max(pipelined)
    ratio = policy / raw
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    lines = [
        ("raw single-row lookups, 1 psycopg connection", f"{raw:10,.0f} /s"),
        (
            f"policy server, {args.clients} clients x {args.window} pipelined",
            f"{policy:10,.0f} /s  ({sum(server_cpu) / len(server_cpu):.2f} cores busy)",
        ),
        ("ratio (target >= 0.5)", f"{ratio:10.2f}     {verdict}"),
    ]
    if one_at_a_time:
        best = max(one_at_a_time)
        lines.append(
            (
                f"for information: {args.postfix_clients} clients, one request at a time",
                f"{best:10,.0f} /s  (ratio {best / raw:.2f})",
            )
        )
    width = max(len(name) for name, _ in lines)
    bar = "=" * 78
    print(f"\n{bar}\nSUMMARY: Postfix policy server, {args.rows:,} rows on PostgreSQL")
    print(f"({args.threads} database threads, best of {args.repeat} runs of {args.seconds:g} s)")
    print(bar)
    for name, value in lines:
        print(f"{name.ljust(width)}  {value}")
    print(bar, flush=True)
    return 0


def _out_of_time(signum, frame):
    raise BenchError("the time limit passed")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"BENCHMARK FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
