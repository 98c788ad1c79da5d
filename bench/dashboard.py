"""The dashboard's render time on a small and on a large database: its cost must not grow with the
big tables.

Small: --small-suppressions (10,000) entries and --small-opt-outs (1,000) opt-outs; large:
--large-suppressions (10,000,000) and --large-opt-outs (1,000,000). Each size gets a fresh
database: the suppressions by bench/common.py's fast load, the opt-outs in SQL over the last 90
days across five tenants, all applied but --open (200) still open whatever the size (open work
is what is due, not history), and the same complaint counts (30 days x 5 tenants x 3 providers)
and data-subject requests at both sizes. The roll-up is then built by the service itself
(`compliance.dashboard.services.roll_up`, timed for information). The small database is kept
beside the large one (renamed `BENCH_DATABASE`_small, dropped at the end), and `GET /admin/` is
rendered by Django's test client in this process, logged in as a superuser, in --rounds rounds
that alternate the two databases (a warm-up, then --renders renders each), so that other work
on the machine weighs on both alike. The figure of each size is the median of all its renders.

Target (DESIGN.md): the large render takes at most 2 x the small one.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

TARGET = 2.0
TENANTS = 5
DAYS = 90
OPEN_DAYS = 10

OPT_OUT_SQL = """
INSERT INTO compliance_optoutrequest (
    received_at, channel, tenant_id, scope_key, scope_label, address_hash, applied_at,
    provider_due_at, can_spam_due_at, propagated_at, alert_state)
SELECT r.at, 'one_click', t.id, t.id || ':commercial', 'commercial',
       digest('optout' || i, 'sha256'), r.at + interval '2 seconds',
       r.at + interval '48 hours', r.at + interval '14 days',
       CASE WHEN %(open)s THEN NULL ELSE r.at + make_interval(secs => 60 + i %% 7200) END, 0
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i,
     LATERAL (SELECT %(base)s::timestamptz - make_interval(secs => (i * %(spread)s)::float8)
              AS at) AS r,
     LATERAL (SELECT (%(tenants)s::bigint[])[1 + i %% %(count)s] AS id) AS t
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small-suppressions", type=common.positive_int, default=10_000)
    parser.add_argument("--small-opt-outs", type=common.positive_int, default=1_000)
    parser.add_argument("--large-suppressions", type=common.positive_int, default=10_000_000)
    parser.add_argument("--large-opt-outs", type=common.positive_int, default=1_000_000)
    parser.add_argument(
        "--open", type=common.positive_int, default=200, help="opt-outs still open (default 200)"
    )
    parser.add_argument(
        "--renders", type=common.positive_int, default=20, help="renders per round (default 20)"
    )
    parser.add_argument("--rounds", type=common.positive_int, default=3)
    args = parser.parse_args(argv)
    if args.open >= min(args.small_opt_outs, args.large_opt_outs):
        parser.error("--open must be fewer than the opt-outs of either size")
    return args


def setup_django(static_root: Path) -> None:
    os.environ.update(
        common.bench_env(
            {
                # The roll-up is built by the benchmark, not by the page as it is viewed.
                "DASHBOARD_ROLL_UP_ON_VIEW": "false",
                "STATIC_ROOT": str(static_root),
                # The requests' verification mails go nowhere.
                "EMAIL_URL": "dummymail://",
            }
        )
    )
    import django

    django.setup()


def seed_tenants() -> list[int]:
    """The default tenant and four more, each with its two streams."""
    from compliance.models import Stream, Tenant

    ids = [Tenant.objects.get(slug="default").pk]
    for n in range(1, TENANTS):
        tenant = Tenant.objects.create(slug=f"client{n}", name=f"Client {n}")
        for slug, kind in [("marketing", "commercial"), ("transactional", "transactional")]:
            Stream.objects.create(tenant=tenant, slug=slug, name=slug.title(), kind=kind)
        ids.append(tenant.pk)
    return ids


def load_opt_outs(count: int, *, open_count: int, tenant_ids: list[int]) -> float:
    """`count` opt-outs over the last DAYS days; `open_count` of them, received over the last
    OPEN_DAYS days whatever the size (some late, some due soon), are still open."""
    began = time.monotonic()
    with common.connect(autocommit=True) as conn:
        base = conn.execute("SELECT now()").fetchone()[0]
        conn.execute("SET synchronous_commit = off")
        for first, last, still_open, spread in [
            (1, open_count, True, OPEN_DAYS * 86400 / open_count),
            (open_count + 1, count, False, DAYS * 86400 / count),
        ]:
            conn.execute(
                OPT_OUT_SQL,
                {
                    "first": first,
                    "last": last,
                    "open": still_open,
                    "base": base,
                    "spread": spread,
                    "tenants": tenant_ids,
                    "count": len(tenant_ids),
                },
            )
        conn.execute("VACUUM ANALYZE compliance_optoutrequest")
        stored = common.table_rows(conn, "compliance_optoutrequest")
    if stored != count:
        raise common.BenchError(f"loaded {stored} opt-outs, expected {count}")
    seconds = time.monotonic() - began
    common.log(f"loaded {count:,} opt-outs ({open_count} open) in {seconds:.1f}s")
    return seconds


def seed_fixed_data(tenant_ids: list[int]) -> None:
    """What does not grow with history: 30 days of complaint counts per tenant and provider,
    and a few data-subject requests."""
    import datetime

    from django.utils import timezone

    from compliance.dsr import services as dsr_services
    from compliance.models import Stream, Tenant
    from fbl.services import count_for_rates

    today = timezone.localdate()
    for tenant in Tenant.objects.filter(pk__in=tenant_ids):
        stream = Stream.objects.get(tenant=tenant, slug="marketing")
        for days_ago in range(30):
            for provider in ("gmail.com", "yahoo.com", "outlook.com"):
                count_for_rates(
                    day=today - datetime.timedelta(days=days_ago),
                    tenant=tenant,
                    stream=stream,
                    campaign="",
                    recipient=f"reader@{provider}",
                    deliveries=10_000,
                    complaints=(days_ago * 7) % 40,
                )
        for n in range(5):
            dsr_services.open_request(
                address=f"dsr{n}@{tenant.slug}.example", kind="access", tenant=tenant
            )


def build_roll_up() -> float:
    from compliance.dashboard import services

    began = time.monotonic()
    result = services.roll_up(max_seconds=float("inf"))
    seconds = time.monotonic() - began
    if not result.caught_up or result.busy:
        raise common.BenchError(f"the roll-up did not finish: {result}")
    common.log(f"roll-up built in {seconds:.1f}s ({result.counted})")
    return seconds


SMALL_DB = f"{common.DB_NAME}_small"


def use_database(name: str) -> None:
    """Point Django's connection at another database (the same server)."""
    from django.db import connections

    connections.close_all()
    connections["default"].settings_dict["NAME"] = name


def client_for_dashboard(open_count: int):
    """A test client logged in as a new superuser, once the page was checked to show the
    open opt-outs loaded."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_superuser("bench", "bench@example.com", "unused")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    page = get(client).content.decode()
    found = re.search(r'<tr class="total" id="open-total">.*?</tr>', page, re.S)
    shown = re.findall(r">([\d,]+)</a>", found.group(0)) if found else []
    if not shown or int(shown[-1].replace(",", "")) != open_count:
        raise common.BenchError(f"the dashboard shows {shown} open opt-outs, not {open_count}")
    return client


def get(client):
    answer = client.get("/admin/", secure=True)
    if answer.status_code != 200:
        raise common.BenchError(f"GET /admin/ answered {answer.status_code}")
    return answer


def render_round(client, renders: int) -> tuple[list[float], int]:
    """(seconds of each of `renders` renders after a warm-up, queries per render)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(2):
        get(client)
    with CaptureQueriesContext(connection) as captured:
        get(client)
    # Read now: the next request empties the log.
    queries = len(captured.captured_queries)
    times = []
    for _ in range(renders):
        began = time.perf_counter()
        get(client)
        times.append(time.perf_counter() - began)
    return times, queries


def load(suppressions: int, opt_outs: int, args) -> dict:
    """A fresh BENCH_DATABASE with this size's data, its roll-up built, and a client."""
    from django.contrib.contenttypes.models import ContentType

    use_database(common.DB_NAME)  # the database is dropped and made again
    ContentType.objects.clear_cache()
    common.prepare_loaded_database(suppressions)
    tenant_ids = seed_tenants()
    load_opt_outs(opt_outs, open_count=args.open, tenant_ids=tenant_ids)
    seed_fixed_data(tenant_ids)
    return {"roll_up": build_roll_up(), "client": client_for_dashboard(args.open), "times": []}


def rename_database(old: str, new: str) -> None:
    from django.db import connections

    connections.close_all()
    with psycopg.connect(common.ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {new} WITH (FORCE)")
        conn.execute(f"ALTER DATABASE {old} RENAME TO {new}")


def drop_database(name: str) -> None:
    from django.db import connections

    connections.close_all()
    with psycopg.connect(common.ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main(args: argparse.Namespace) -> int:
    static_root = Path(tempfile.mkdtemp(prefix="bench-dashboard-static-"))
    # Production settings serve the admin's static files through a manifest.
    common.manage("collectstatic", "--noinput", env={"STATIC_ROOT": str(static_root)})
    setup_django(static_root)
    try:
        small = load(args.small_suppressions, args.small_opt_outs, args)
        rename_database(common.DB_NAME, SMALL_DB)
        large = load(args.large_suppressions, args.large_opt_outs, args)
        queries = {}
        for round_ in range(1, args.rounds + 1):
            common.wait_quiet()
            for name, size, database in [("small", small, SMALL_DB), ("large", large, None)]:
                use_database(database or common.DB_NAME)
                times, queries[name] = render_round(size["client"], args.renders)
                size["times"] += times
                common.log(
                    f"round {round_}, {name}: {statistics.median(times) * 1000:.1f} ms "
                    f"(median of {args.renders}), {queries[name]} queries"
                )
    finally:
        drop_database(SMALL_DB)
    small_ms = statistics.median(small["times"]) * 1000
    large_ms = statistics.median(large["times"]) * 1000
    ratio = large_ms / small_ms
    common.print_summary(
        "dashboard render, small and large database",
        [
            (
                "small",
                f"{args.small_suppressions:,} suppressions, {args.small_opt_outs:,} opt-outs: "
                f"{small_ms:.1f} ms, {queries['small']} queries "
                f"(roll-up built in {small['roll_up']:.1f} s)",
            ),
            (
                "large",
                f"{args.large_suppressions:,} suppressions, {args.large_opt_outs:,} opt-outs: "
                f"{large_ms:.1f} ms, {queries['large']} queries "
                f"(roll-up built in {large['roll_up']:.1f} s)",
            ),
            ("renders", f"{args.rounds} rounds of {args.renders} per size, alternating"),
            ("ratio large / small", f"{ratio:.2f}"),
            ("target", f"<= {TARGET:.0f}: {common.verdict(ratio, TARGET, at_most=True)}"),
        ],
    )
    return 0


if __name__ == "__main__":
    common.run_main(main, parse_args)
