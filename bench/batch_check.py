"""Batch check: POST /api/v1/suppressions/check with 10,000 addresses against a large table,
beside the same lookup done as bare SQL from one Python process.

Baselines (one psycopg 3 connection, hashes computed beforehand, rows fetched into Python,
planned as the service plans its batch: index probes, no JIT, generic plans):
  (a) WHERE address_hash = ANY(hashes) AND scope_key = ANY(keys) AND lifted_at IS NULL ...
  (b) a join of unnest(sorted hashes) with the table, the shape of suppression.sql.BLOCKING_SQL
each with the hashes passed as %s (psycopg sends a text array) and as %b (a binary array; (c) and
(d)), and
  (e) a join with the sorted hashes sent as one bytea and cut into 32-byte pieces by the server
      (generate_series and substring), as the service itself sends them;
  (f) on a partitioned list, (e) per partition: each partition read directly with the hashes
      PostgreSQL routes to it (suppression.partition_routes, routed beforehand);
  (g) (f) with the hashes sent once, grouped by partition, each partition reading its own run
      of them by index, as the service reads a partitioned list;
  (h) (g) with its rows read in binary, as the service reads them (the others read text).
The fastest is "fastest bare SQL". The API figure includes everything
the service does (HTTP, JSON, auth, normalising and hashing every address, the query, the
answer). The same batch is also posted as its keyed hashes in hex (`"hashes"`), as a relay that
holds the key sends it: the same work without normalising and hashing. Each round runs every
query and both API requests back to back (medians over --repeat rounds, after a warm-up), so
other work on the shared machine weighs on the baseline and the API alike; rounds disturbed by
other work are set aside and run again. Each bare query follows another on the same connection;
each API request is posted twice in a row, and the second is the one measured, as a relay
posting a campaign's batches one after another sees it (the first, after a second of bare
queries during which the service's processes sat idle, is printed for information).

Target (DESIGN.md): API throughput >= 0.8 x fastest bare SQL (0.5 was the first bar; both
verdicts are printed).

--replica: the same batch check against a streaming read replica beside the primary. The run
starts a private PostgreSQL primary (tests/pg_cluster.py, the machine's own PostgreSQL programs)
on a loopback port, loads it, makes two streaming replicas of it (pg_basebackup -R), and posts
the batch alternately to a gunicorn on the primary alone and to one whose relay reads go to a
replica (REPLICA_DATABASE_URLS), round after round (medians). Target: replica throughput >= 0.9
x primary. Then, for information, the check rate (addresses/s) of two web processes under load
from --clients threads, both on one replica against each on a replica of its own.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import threading
import time

import common

from suppression import partition_routes, rules

TARGET_RATIO = 0.8
FIRST_BAR = 0.5
REPLICA_TARGET_RATIO = 0.9
LABELS = {
    "a": "(a) = ANY, text array (%s)",
    "b": "(b) unnest join, text array (%s)",
    "c": "(c) = ANY, binary array (%b)",
    "d": "(d) unnest join, binary array (%b)",
    "e": "(e) join on one bytea cut by the server (%b)",
    "f": "(f) each partition joined with its own hashes, routed beforehand (%b)",
    "g": "(g) as (f), the hashes sent once, grouped by partition, each reading its run (%b)",
    "h": "(h) as (g), its rows read in binary, as the service reads them (%b)",
}

SQL_ANY = """
SELECT address_hash, scope_key, reason, created_at
FROM suppression_suppression
WHERE address_hash = ANY(%(hashes)s) AND scope_key = ANY(%(keys)s)
  AND lifted_at IS NULL AND (expires_at IS NULL OR expires_at > now())
"""

SQL_UNNEST = """
SELECT s.address_hash, s.scope_key, s.reason, s.created_at
FROM unnest(%(hashes)s::bytea[]) AS h(address_hash)
JOIN suppression_suppression AS s ON s.address_hash = h.address_hash
WHERE s.lifted_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > now())
  AND s.scope_key = ANY(%(keys)s)
"""

SQL_BLOB = """
SELECT s.address_hash, s.scope_key, s.reason, s.created_at
FROM generate_series(0, length(%(hashes)b::bytea) / 32 - 1) AS i
JOIN suppression_suppression AS s
  ON s.address_hash = substring(%(hashes)b::bytea FROM i * 32 + 1 FOR 32)
WHERE s.lifted_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > now())
  AND s.scope_key = ANY(%(keys)s)
"""


# (f), one branch per partition: the hashes are cut in a subquery kept apart (OFFSET 0), as the
# service does, so that each probe compares with a column rather than with an expression over
# the whole parameter.
SQL_PARTITION = """
SELECT s.address_hash, s.scope_key, s.reason, s.created_at
FROM (SELECT substring(%(hashes)b::bytea FROM i * 32 + 1 FOR 32) AS address_hash
      FROM generate_series(0, length(%(hashes)b::bytea) / 32 - 1) AS i OFFSET 0) AS h
JOIN suppression_suppression AS s ON s.address_hash = h.address_hash
WHERE s.lifted_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > now())
  AND s.scope_key = ANY(%(keys)s)
"""


def routed_sql(layout) -> tuple[str, list[str]]:
    """(f): SQL_PARTITION for each partition of a partitioned list, read directly with the
    hashes PostgreSQL routes to it in its own parameter; the parameter names by remainder."""
    params = [f"p{remainder}" for remainder in range(layout.modulus)]
    branches = [
        SQL_PARTITION.replace("suppression_suppression", table).replace("(hashes)", f"({param})")
        for table, param in zip(layout.partitions, params, strict=True)
    ]
    return "UNION ALL".join(branches), params


# (g), (f) with the hashes sent once: one bytea grouped by partition, each branch reading its own
# run of it by index, as the service sends them (it reads the same hashes among the pending
# opt-outs too, and sending them twice cost it more than the planning of the branches).
SQL_RUN = SQL_PARTITION.replace(
    "generate_series(0, length(%(hashes)b::bytea) / 32 - 1)",
    "generate_series(%(first)s::int, %(last)s::int)",
)


def grouped_sql(layout, sorted_hashes: bytes) -> tuple[str, dict]:
    """(g): SQL_RUN for each partition holding any of the hashes, and its parameters."""
    grouped, runs = partition_routes.group(sorted_hashes, layout.modulus)
    params: dict = {"hashes": grouped}
    branches = []
    for remainder, (first, last) in runs.items():
        branches.append(
            SQL_RUN.replace("suppression_suppression", layout.partitions[remainder])
            .replace("(first)", f"(p{remainder}_first)")
            .replace("(last)", f"(p{remainder}_last)")
        )
        params[f"p{remainder}_first"], params[f"p{remainder}_last"] = first, last
    return "UNION ALL".join(branches), params


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=common.positive_int, default=10_000_000,
                        help="suppression rows to load (default 10,000,000)")
    parser.add_argument("--batch", type=common.positive_int, default=10_000,
                        help="addresses per check, half of them listed (default 10,000)")
    parser.add_argument("--repeat", type=common.positive_int, default=5,
                        help="timed repeats of each measurement; the median is reported (5)")
    parser.add_argument("--workers", type=common.positive_int, default=2,
                        help="gunicorn workers (default 2)")
    parser.add_argument("--reuse-db", action="store_true",
                        help="keep the database if it already holds exactly --rows entries "
                             "(skips the load; for repeated runs)")
    parser.add_argument("--quiet-wait", type=float, default=180,
                        help="seconds to wait for other work on the machine to stop before "
                             "measuring (default 180; 0: do not wait)")
    parser.add_argument("--noise", type=float, default=0.25,
                        help="set aside a round during which other work on the machine used "
                             "more than this many cores (default 0.25)")
    parser.add_argument("--round-limit", type=float, default=600,
                        help="seconds to keep replacing disturbed rounds (default 600)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the batch")
    parser.add_argument("--replica", action="store_true",
                        help="measure the check on a streaming read replica against the primary "
                             "(a private PostgreSQL cluster; see above)")
    parser.add_argument("--clients", type=common.positive_int, default=4,
                        help="--replica: concurrent clients of the two-process rate (default 4)")
    parser.add_argument("--rate-seconds", type=float, default=10.0,
                        help="--replica: seconds each two-process rate is measured (default 10)")
    return parser.parse_args(argv)


def make_batch(rows: int, size: int, seed: int) -> tuple[list[str], set[str]]:
    rng = random.Random(seed)
    listed_count = min(size // 2, rows)
    listed = [common.listed_address(i) for i in rng.sample(range(1, rows + 1), listed_count)]
    unlisted = [common.unlisted_address(i)
                for i in rng.sample(range(1, 10 * (rows + size)), size - listed_count)]
    batch = listed + unlisted
    rng.shuffle(batch)
    return batch, set(listed)


def list_layout():
    """The list's hash partitions (suppression.partition_routes), or None for a plain table."""
    with common.connect() as conn, conn.cursor() as cursor:
        oid = cursor.execute("SELECT 'suppression_suppression'::regclass::oid").fetchone()[0]
        return partition_routes.read_layout(cursor, oid)


def sql_params(values, keys: list[str]) -> dict:
    """A variant's parameters: its hashes (or, for (f), its hashes per partition) and the keys."""
    return {**values, "keys": keys} if isinstance(values, dict) else {"hashes": values,
                                                                      "keys": keys}


def run_sql(conn, sql: str, params: dict, expected: int, binary: bool = False) -> float:
    began = time.perf_counter()
    with conn.cursor(binary=binary) as cursor:
        found = cursor.execute(sql, params).fetchall()
    elapsed = time.perf_counter() - began
    if len(found) != expected:
        raise common.BenchError(f"bare SQL found {len(found)} rows, expected {expected}")
    return elapsed


def post_batch(port: int, key: str, body: bytes) -> tuple[float, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        began = time.perf_counter()
        conn.request("POST", "/api/v1/suppressions/check", body=body,
                     headers={"Authorization": f"Bearer {key}",
                              "Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - began
    finally:
        conn.close()
    if response.status != 200:
        raise common.BenchError(f"API answered {response.status}: {payload[:500]!r}")
    return elapsed, json.loads(payload)


def warm_up_workers(port: int, key: str, body: bytes, workers: int) -> None:
    """Concurrent rounds, so that every worker has connected, cached and run the query."""
    errors: list[BaseException] = []

    def one() -> None:
        try:
            post_batch(port, key, body)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    for _ in range(2):
        threads = [threading.Thread(target=one) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise common.BenchError(f"warm-up request failed: {errors[0]}")


def main(args: argparse.Namespace) -> int:
    if args.replica:
        return replica_main(args)
    tenant_id, load_seconds = common.prepare_loaded_database(args.rows, reuse=args.reuse_db)
    stream_id = 2
    with common.connect() as conn:
        row = conn.execute("SELECT id, kind FROM compliance_stream WHERE tenant_id = %s AND "
                           "slug = 'marketing'", (tenant_id,)).fetchone()
        if row is None or row[1] != "commercial":
            raise common.BenchError(f"no commercial 'marketing' stream for tenant {tenant_id}")
        stream_id = row[0]
    keys = list(rules.blocking_keys(tenant_id=tenant_id, stream_id=stream_id,
                                    commercial=True).any_reason)
    batch, listed = make_batch(args.rows, args.batch, args.seed)
    hashes = [common.python_hash(a) for a in batch]
    common.log(f"batch of {len(batch):,} addresses, {len(listed):,} listed; keys {keys}")

    # The bare queries: (a) and (b) as specified, with %s, for which psycopg sends the hashes
    # as a text array; (c) and (d) the same queries with the array in binary (%b), as the
    # service itself sends it: PostgreSQL's parsing of 10,000 text bytea elements is about half
    # of (a)'s and (b)'s time, so the binary forms are the fastest bare SQL.
    variants = {
        "a": (SQL_ANY, hashes),
        "b": (SQL_UNNEST, sorted(hashes)),
        "c": (SQL_ANY.replace("(hashes)s", "(hashes)b"), hashes),
        "d": (SQL_UNNEST.replace("(hashes)s", "(hashes)b"), sorted(hashes)),
        # (e): the whole batch as one value, no per-element array work on either side.
        "e": (SQL_BLOB, b"".join(sorted(hashes))),
    }
    layout = list_layout()
    if layout is not None:
        # (f): on the partitioned list, no probe goes through the partitions' Append node.
        sql_f, names = routed_sql(layout)
        runs = partition_routes.split(b"".join(sorted(hashes)), layout.modulus)
        variants["f"] = (sql_f, {name: runs.get(r, b"") for r, name in enumerate(names)})
        variants["g"] = grouped_sql(layout, b"".join(sorted(hashes)))
        # (h): the same rows loaded as the service loads them. The other variants read them as
        # text, which cost psycopg 2-3 ms more for 5,000 rows (bench/README.md, batch check).
        variants["h"] = variants["g"]
    times: dict[str, list[float]] = {
        name: [] for name in [*variants, "api", "api_hashes", "api_first", "api_hashes_first"]
    }
    key = common.create_api_key()
    body = json.dumps({"stream": "marketing", "addresses": batch}).encode()
    # The same batch as a relay with the key sends it: the keyed hashes in hex.
    hex_hashes = [h.hex() for h in hashes]
    hashes_body = json.dumps({"stream": "marketing", "hashes": hex_hashes}).encode()
    listed_hex = {h.hex() for a, h in zip(batch, hashes, strict=True) if a in listed}

    def check(answer: dict, item: str = "address", expected: set[str] = listed) -> None:
        suppressed = {entry[item] for entry in answer["suppressed"]}
        if answer["checked"] != len(batch) or answer["invalid"]:
            raise common.BenchError(f"API checked {answer['checked']} with "
                                    f"{len(answer['invalid'])} invalid")
        if len(answer["suppressed"]) != len(expected) or suppressed != expected:
            raise common.BenchError(f"API reported {len(answer['suppressed'])} suppressed, "
                                    f"expected {len(expected)} (the listed {item}es)")

    with common.gunicorn(args.workers) as server, \
            common.connect(autocommit=True, prepare_threshold=None) as conn:
        warm_up_workers(server.port, key, body, args.workers)
        warm_up_workers(server.port, key, hashes_body, args.workers)
        # The plan the service forces on the partitioned list (suppression.sql.INDEX_PROBES_ONLY):
        # index probes, no hash join over the whole table, no JIT; and a generic plan, which
        # leaves the hashes out of the planner's expressions (custom plans of (f) and (g) were
        # slower: 40.7 and 46.1 against 39.6 and 40.3 ms, bench/README.md).
        conn.execute("SET enable_hashjoin = off")
        conn.execute("SET enable_mergejoin = off")
        conn.execute("SET jit = off")
        conn.execute("SET plan_cache_mode = force_generic_plan")
        for name, (sql, values) in variants.items():  # warm-up
            run_sql(conn, sql, sql_params(values, keys), len(listed), binary=name == "h")
        common.wait_quiet(max_wait=args.quiet_wait)
        # Rounds of every measurement one after the other, so that a burst of other work on
        # this shared machine hits the baseline and the API alike; a round during which other
        # work used more than --noise cores is set aside and run again (within a time limit).
        probes = [common.cpu_probe()]
        rounds = clean = 0
        noisy: list[float] = []
        deadline = time.monotonic() + args.round_limit
        while clean < args.repeat:
            meter = common.CpuMeter(server)
            meter.start()
            round_times = {}
            for name, (sql, values) in variants.items():
                round_times[name] = run_sql(conn, sql, sql_params(values, keys), len(listed),
                                            binary=name == "h")
            round_times["api_first"], _ = post_batch(server.port, key, body)
            round_times["api"], answer = post_batch(server.port, key, body)
            round_times["api_hashes_first"], _ = post_batch(server.port, key, hashes_body)
            round_times["api_hashes"], hashes_answer = post_batch(server.port, key, hashes_body)
            cpu = meter.stop()
            check(answer)
            check(hashes_answer, "hash", listed_hex)
            rounds += 1
            if cpu["other_cores"] <= args.noise:
                clean += 1
                for name, value in round_times.items():
                    times[name].append(value)
            else:
                noisy.append(cpu["other_cores"])
                if time.monotonic() > deadline:
                    common.log(f"only {clean} undisturbed rounds within {args.round_limit:g}s")
                    break
        probes.append(common.cpu_probe())
        if not times["api"]:
            raise common.BenchError(f"no round without other work (> {args.noise} cores) on "
                                    f"the machine within {args.round_limit:g}s; try later")
    for name, values in times.items():
        common.log(f"{name}: {[f'{t * 1000:.1f}' for t in values]} ms")
    medians = {name: common.median(values) for name, values in times.items()}
    api = medians["api"]
    api_hashes = medians["api_hashes"]
    text_name, text_fastest = min(((n, medians[n]) for n in ("a", "b")), key=lambda i: i[1])
    fastest_name, fastest = min(((n, medians[n]) for n in variants), key=lambda i: i[1])

    def rate(seconds: float) -> str:
        return f"{len(batch) / seconds:>10,.0f} addresses/s  ({seconds * 1000:.1f} ms per batch)"

    ratio = fastest / api
    hashes_ratio = fastest / api_hashes
    lines = [
        ("rows in table", f"{args.rows:,}"),
        ("batch", f"{len(batch):,} addresses, {len(listed):,} listed; median of "
                  f"{len(times['api'])} rounds"),
    ]
    if load_seconds is not None:
        lines.append(("load time", f"{load_seconds:.1f} s"))
    lines += [(f"bare SQL {LABELS[name]}", rate(medians[name])) for name in variants]
    lines += [
        ("fastest bare SQL", f"{LABELS[fastest_name]}: {rate(fastest).strip()}"),
        (f"API POST (gunicorn -w {args.workers})", rate(api)),
        ("ratio API / fastest bare SQL",
         f"{ratio:.2f}  (target >= {TARGET_RATIO}: "
         f"{common.verdict(ratio, TARGET_RATIO, at_most=False)}; first bar {FIRST_BAR}: "
         f"{common.verdict(ratio, FIRST_BAR, at_most=False)})"),
        ("API POST by hashes (the same batch in hex)", rate(api_hashes)),
        ("ratio API by hashes / fastest bare SQL",
         f"{hashes_ratio:.2f}  (target >= {TARGET_RATIO}: "
         f"{common.verdict(hashes_ratio, TARGET_RATIO, at_most=False)})"),
        ("information: the first of the two requests, after the bare queries",
         f"by addresses {fastest / medians['api_first']:.2f} ({medians['api_first'] * 1000:.1f} "
         f"ms), by hashes {fastest / medians['api_hashes_first']:.2f} "
         f"({medians['api_hashes_first'] * 1000:.1f} ms) of the fastest bare SQL"),
        ("information: API / fastest of (a), (b)",
         f"{text_fastest / api:.2f} (the hashes as a text array, %s, as first specified)"),
        ("other work on the machine",
         f"{len(times['api'])} rounds used; {len(noisy)} rounds set aside because other work "
         f"used more than {args.noise:g} of {os.cpu_count()} cores"),
        ("CPU speed probe", f"{probes[0]:.0f} ms before, {probes[1]:.0f} ms after "
                            f"(common.cpu_probe; higher = slower machine)"),
        ("correctness", f"API suppressed {len(listed):,} = listed {len(listed):,}, by "
                        f"addresses and by hashes: ok"),
    ]
    common.print_summary("batch check", lines)
    return 0




# --- --replica -----------------------------------------------------------------------------


def replica_reads(cluster, number: int) -> int:
    """Scans of the suppression table the replica has run (its own statistics): the table's
    partitions' when it is partitioned, since a partitioned parent counts none itself."""
    with cluster.connect(cluster.replicas[number], dbname=common.DB_NAME) as conn:
        return conn.execute("SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0) "
                            "FROM pg_stat_user_tables WHERE relname = %s OR relid IN "
                            "(SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass)",
                            (common.TABLE, common.TABLE)).fetchone()[0]


def check_rate(ports: list[int], key: str, body: bytes, clients: int, seconds: float,
               check) -> float:
    """Batches per second that `clients` threads get through, each posting to the `ports` in
    turn for `seconds` (a bounded run)."""
    done = [0] * clients
    errors: list[BaseException] = []
    stop_at = time.monotonic() + seconds

    def client(number: int) -> None:
        try:
            turn = number
            while time.monotonic() < stop_at:
                _, answer = post_batch(ports[turn % len(ports)], key, body)
                check(answer)
                done[number] += 1
                turn += 1
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    if errors:
        raise common.BenchError(f"a client failed: {errors[0]}")
    return sum(done) / elapsed


def replica_main(args: argparse.Namespace) -> int:
    from tests.pg_cluster import ClusterError, missing_programs, pg_cluster

    missing = missing_programs()
    if missing:
        raise common.BenchError(f"--replica needs {', '.join(missing)}")
    try:
        with pg_cluster(replicas=0, settings={"shared_buffers": "1GB"}) as cluster:
            common.use_database_server(cluster.primary.port)
            common.log(f"private primary on 127.0.0.1:{cluster.primary.port}")
            return measure_replica(args, cluster)
    except ClusterError as exc:
        raise common.BenchError(str(exc)) from exc


def measure_replica(args: argparse.Namespace, cluster) -> int:
    _, load_seconds = common.prepare_loaded_database(args.rows)
    began = time.monotonic()
    for _ in range(2):
        server = cluster.add_replica()
        common.log(f"streaming replica on 127.0.0.1:{server.port}")
    copy_seconds = time.monotonic() - began
    replica_urls = [cluster.replica_url(n, common.DB_NAME) for n in range(2)]

    batch, listed = make_batch(args.rows, args.batch, args.seed)
    key = common.create_api_key()
    for number in range(2):
        cluster.wait_replayed(number)  # the key, written after the copies were taken
    body = json.dumps({"stream": "marketing", "addresses": batch}).encode()

    def check(answer: dict) -> None:
        suppressed = {item["address"] for item in answer["suppressed"]}
        if answer["checked"] != len(batch) or suppressed != listed:
            raise common.BenchError(f"API reported {len(suppressed)} suppressed, expected "
                                    f"{len(listed)} (the listed addresses)")

    def on_replica(*urls: str) -> dict[str, str]:
        return {"REPLICA_DATABASE_URLS": ",".join(urls)}

    times: dict[str, list[float]] = {"primary": [], "replica": []}
    with common.gunicorn(args.workers) as primary, \
            common.gunicorn(args.workers, env=on_replica(replica_urls[0])) as replica:
        for server in (primary, replica):
            warm_up_workers(server.port, key, body, args.workers)
        common.wait_quiet(max_wait=args.quiet_wait)
        reads_before = replica_reads(cluster, 0)
        for _ in range(args.repeat):
            for name, server in (("primary", primary), ("replica", replica)):
                elapsed, answer = post_batch(server.port, key, body)
                check(answer)
                times[name].append(elapsed)
        # A backend sends its statistics at most once a second, and an idle one within ten.
        deadline = time.monotonic() + 12
        while (reads := replica_reads(cluster, 0) - reads_before) < args.repeat:
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
    if reads < args.repeat:
        raise common.BenchError(f"the replica scanned the list {reads} times for "
                                f"{args.repeat} checks: the service did not read from it")

    # Two web processes (one worker each) under the same load: both on one replica, then each
    # on a replica of its own.
    rates = {}
    for label, envs in (("one replica", [on_replica(replica_urls[0])] * 2),
                        ("two replicas", [on_replica(url) for url in replica_urls])):
        with common.gunicorn(1, env=envs[0]) as first, common.gunicorn(1, env=envs[1]) as second:
            for server in (first, second):
                warm_up_workers(server.port, key, body, 1)
            rates[label] = check_rate([first.port, second.port], key, body, args.clients,
                                      args.rate_seconds, check)

    for name, values in times.items():
        common.log(f"{name}: {[f'{t * 1000:.1f}' for t in values]} ms")
    medians = {name: common.median(values) for name, values in times.items()}
    ratio = medians["primary"] / medians["replica"]

    def rate(seconds: float) -> str:
        return f"{len(batch) / seconds:>10,.0f} addresses/s  ({seconds * 1000:.1f} ms per batch)"

    lines = [
        ("rows in table", f"{args.rows:,}"),
        ("batch", f"{len(batch):,} addresses, {len(listed):,} listed; median of "
                  f"{args.repeat} rounds"),
    ]
    if load_seconds is not None:
        lines.append(("load time", f"{load_seconds:.1f} s; two replicas copied in "
                                   f"{copy_seconds:.1f} s"))
    lines += [
        (f"API POST on the primary (gunicorn -w {args.workers})", rate(medians["primary"])),
        (f"API POST on a replica (gunicorn -w {args.workers})", rate(medians["replica"])),
        ("ratio replica / primary",
         f"{ratio:.2f}  (target >= {REPLICA_TARGET_RATIO}: "
         f"{common.verdict(ratio, REPLICA_TARGET_RATIO, at_most=False)})"),
        ("reads on the replica", f"{reads} scans of the list for {args.repeat} checks"),
    ]
    for label, batches in rates.items():
        lines.append((f"2 web processes, {label}",
                      f"{batches * len(batch):,.0f} addresses/s ({batches:.1f} batches/s, "
                      f"{args.clients} clients, {args.rate_seconds:g} s)"))
    lines.append(("information: two replicas / one",
                  f"{rates['two replicas'] / rates['one replica']:.2f} (on one machine the "
                  "replicas share its cores)"))
    common.print_summary("batch check on a read replica", lines)
    return 0


if __name__ == "__main__":
    common.run_main(main, parse_args)
