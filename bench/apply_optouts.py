"""Applying recorded opt-outs: one worker process sweeping a backlog of one-click opt-outs
(`unsubscribe.services.apply_pending_opt_outs` called in a loop, as the `unsubscribe.apply_pending`
task does, until nothing is pending), beside the raw SQL of the same writes.

The database: a list of `--listed` entries (the default tenant's commercial unsubscribes), four
tenants in four time zones, each with two commercial streams (`marketing` with the topics
`offers` and `events`, and `news`) and a transactional one, `--endpoints` downstream endpoints
(every event type, every tenant; nothing listens: deliveries stay queued), and a consent grant
for a third of the stream opt-outs' addresses. Then `--requests` one-click opt-outs are recorded
as a burst leaves them (`record_opt_out` with apply deferred: one INSERT each), of which, per 20:
9 of a stream, 4 of a topic, 2 of all the tenant's commercial mail, 2 of an address already
listed for all commercial mail (nothing to do), 1 of a stream by a listed address, 1 repeating
an earlier opt-out exactly (nothing to do), 1 of all commercial mail by the address of an
earlier stream opt-out. The repeat window is off while recording, so repeats reach the backlog.

Measured: the worker's wall time from its first sweep to the sweep that finds nothing left. Then
every count is checked: each request applied exactly once, and exactly the entries, history
events, opt-out records, consent withdrawals, webhook events and deliveries the mix asks for.

Baseline, same run: the rows the worker wrote, copied beforehand into staging tables (hashes and
event ids altered so that they do not collide with the rows already there), inserted into the
same tables by plain INSERT ... SELECT statements in one transaction (rolled back after each of
`--baseline-repeat` runs; the median), with the requests' UPDATE: what the database must do to
store these rows at all, with no Python and no decisions.

Target (DESIGN.md): at least 1,000 opt-outs applied per second per worker.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    PYTHON,
    ROOT,
    BenchError,
    bench_env,
    connect,
    listed_address,
    log,
    median,
    positive_int,
    prepare_loaded_database,
    print_summary,
    run_main,
    verdict,
)

TARGET = 1000.0
ZONES = {
    "default": "UTC",
    "ny": "America/New_York",
    "berlin": "Europe/Berlin",
    "tokyo": "Asia/Tokyo",
}
WORKER = """
import json, resource, sys, time
import django
django.setup()
from unsubscribe import services
batch = int(sys.argv[1])
began, applied, sweeps = time.perf_counter(), 0, 0
while True:
    done = services.apply_pending_opt_outs(batch_size=batch)
    sweeps += 1
    applied += done
    if done == 0:
        break
seconds = time.perf_counter() - began
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"applied": applied, "seconds": seconds, "sweeps": sweeps,
                  "cpu": usage.ru_utime + usage.ru_stime}))
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--requests",
        type=positive_int,
        default=20_000,
        help="one-click opt-outs recorded as pending (default 20,000)",
    )
    parser.add_argument(
        "--listed",
        type=positive_int,
        default=100_000,
        help="entries already listed (default 100,000)",
    )
    parser.add_argument(
        "--batch", type=positive_int, default=1000, help="requests per batch (default 1,000)"
    )
    parser.add_argument(
        "--endpoints",
        type=int,
        default=1,
        help="downstream endpoints wanting every event (default 1; 0: none)",
    )
    parser.add_argument(
        "--baseline-repeat",
        type=positive_int,
        default=3,
        help="runs of the raw SQL; the median is the baseline (default 3)",
    )
    parser.add_argument(
        "--broker",
        default="redis://127.0.0.1:6379/14",
        help="Celery broker the worker queues webhook deliveries to",
    )
    return parser.parse_args(argv)


def main(args: argparse.Namespace) -> int:
    prepare_loaded_database(args.listed)
    env = {
        "CELERY_BROKER_URL": args.broker,
        "UNSUBSCRIBE_APPLY_INLINE": "false",
        "UNSUBSCRIBE_REPEAT_WINDOW_SECONDS": "0",
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    }
    os.environ.update(bench_env(env))
    import django

    django.setup()
    expected = _record_backlog(args)
    marks = _marks()
    log(f"{args.requests:,} opt-outs pending; one worker applies them")
    proc = subprocess.run(
        [str(PYTHON), "-c", WORKER, str(args.batch)],
        cwd=ROOT,
        env=bench_env(env),
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise BenchError(f"the worker failed:\n{proc.stdout}\n{proc.stderr}")
    worker = json.loads(proc.stdout.strip().splitlines()[-1])
    found = _verify(expected, marks, args)
    log("counts verified; the raw SQL of the same writes")
    _stage(marks)
    baseline = median([_raw_writes() for _ in range(args.baseline_repeat)])
    rate = worker["applied"] / worker["seconds"]
    base_rate = worker["applied"] / baseline
    print_summary(
        "applying recorded opt-outs: one worker vs the raw SQL of the same writes",
        [
            ("pending one-click opt-outs / listed entries", f"{args.requests:,} / {args.listed:,}"),
            ("batch size / endpoints", f"{args.batch} / {args.endpoints}"),
            (
                "worker",
                f"{worker['applied']:,} applied in {worker['seconds']:.2f} s "
                f"({worker['sweeps']} sweeps, {worker['cpu']:.2f} s of its own CPU)",
            ),
            (
                "applied per second (target >= 1,000)",
                f"{rate:,.0f}  {verdict(rate, TARGET, at_most=False)}",
            ),
            ("raw SQL of the same writes", f"{baseline:.2f} s ({base_rate:,.0f} per second)"),
            ("ratio to the raw SQL (rate / raw rate)", f"{rate / base_rate:.2f}"),
            ("rows written", ", ".join(f"{name} {count:,}" for name, count in found.items())),
        ],
    )
    return 0


# --- the backlog --------------------------------------------------------------------------------


def _record_backlog(args) -> dict[str, int]:
    """Tenants, streams, topics, endpoints, consents, and the pending requests; returns the
    counts the worker must leave."""
    from compliance.consent import services as consent_services
    from compliance.models import Stream, Tenant, Topic
    from compliance.webhooks.services import endpoints
    from unsubscribe import services
    from unsubscribe.tokens import Claims

    lists = {}
    for slug, zone in ZONES.items():
        tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": slug.title()})
        tenant.time_zone = zone
        tenant.save()
        streams = {}
        for name, kind in (
            ("marketing", "commercial"),
            ("news", "commercial"),
            ("transactional", "transactional"),
        ):
            streams[name], _ = Stream.objects.get_or_create(
                tenant=tenant, slug=name, defaults={"name": name.title(), "kind": kind}
            )
        topics = [
            Topic.objects.get_or_create(stream=streams["marketing"], slug=t, defaults={"name": t})[
                0
            ]
            for t in ("offers", "events")
        ]
        lists[slug] = (tenant, streams, topics)
    for n in range(args.endpoints):
        endpoints.add_endpoint(
            url=f"http://127.0.0.1:9/hook/{n}",
            event_types="optout.created,suppression.added,suppression.lifted,consent.withdrawn",
        )
    slugs = list(ZONES)
    base = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2)
    made: list[tuple] = []  # (tenant slug, stream, topic, address, breadth) per request
    grants: dict[str, list[dict]] = {slug: [] for slug in slugs}
    for i in range(args.requests):
        kind = i % 20
        slug = slugs[i % len(slugs)]
        stream, topic, breadth = "marketing" if i % 2 else "news", None, "link"
        address = f"optout{i}@example{i % 500}.com"
        if 9 <= kind <= 12:
            stream, topic = "marketing", i % 2
        elif kind in (13, 14):
            breadth = "commercial"
        elif kind in (15, 16):
            slug, breadth, address = "default", "commercial", listed_address(i % args.listed + 1)
        elif kind == 17:
            slug, address = "default", listed_address(i // 20 % args.listed + 1)
        elif kind in (18, 19) and i >= kind:
            slug, stream, topic, address, _ = made[i - kind]
            breadth = "link" if kind == 18 else "commercial"
        elif kind <= 8 and i % 3 == 0:
            grants[slug].append(_grant(address, stream))
        made.append((slug, stream, topic, address, breadth))
    for slug, items in grants.items():
        for start in range(0, len(items), 5000):
            consent_services.record(lists[slug][0], items[start : start + 5000])
    log(f"recording {args.requests:,} one-click opt-outs")
    for i, (slug, stream, topic, address, breadth) in enumerate(made):
        tenant, streams, topics = lists[slug]
        services.record_opt_out(
            claims=Claims(
                tenant_id=tenant.pk,
                recipient=address,
                stream_id=streams[stream].pk,
                topic_id=topics[topic].pk if topic is not None else None,
            ),
            evidence=services.Evidence(
                channel="one_click",
                ip=f"192.0.2.{i % 250 + 1}",
                user_agent="Mozilla/5.0 (bench)",
                received_at=base + datetime.timedelta(milliseconds=100 * i),
            ),
            breadth=breadth,
            apply_now=False,
        )
    return _expected(made, args)


def _grant(address: str, stream: str) -> dict:
    return {
        "address": address,
        "purpose": stream,
        "action": "grant",
        "basis": "consent",
        "method": "api",
        "evidence": {"collected_at": "2026-01-05T10:00:00Z", "wording": "Send me news"},
    }


def _nothing_to_do(i: int) -> bool:
    """An address already listed for the same key, or an exact repeat of an earlier opt-out."""
    return i % 20 in (15, 16) or (i % 20 == 18 and i >= 18)


def _expected(made: list[tuple], args) -> dict[str, int]:
    """What the mix asks for: a new key for every request but those with nothing to do."""
    adds = [m for i, m in enumerate(made) if not _nothing_to_do(i)]
    withdrawals = sum(2 if breadth == "commercial" else 1 for *_, breadth in adds)
    events = 2 * len(adds) + withdrawals if args.endpoints else 0
    return {
        "requests": len(made),
        "entries": len(adds),
        "history": len(adds),
        "opt_outs": len(adds),
        "withdrawals": withdrawals,
        "events": events,
        "deliveries": events * max(args.endpoints, 0),
    }


# --- counting what the worker wrote ---------------------------------------------------------------

TABLES = {
    "entries": "suppression_suppression",
    "history": "suppression_suppressionevent",
    "opt_outs": "compliance_optoutrequest",
    "withdrawals": "consent_consentrecord",
    "events": "webhooks_webhookevent",
    "deliveries": "webhooks_webhookdelivery",
}


def _marks() -> dict[str, int]:
    """The highest id of each table before the worker runs."""
    with connect() as conn:
        return {
            name: conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
            for name, table in TABLES.items()
        }


def _verify(expected: dict[str, int], marks: dict[str, int], args) -> dict[str, int]:
    with connect() as conn:
        found = {
            name: conn.execute(
                f"SELECT count(*) FROM {table} WHERE id > %s", (marks[name],)
            ).fetchone()[0]
            for name, table in TABLES.items()
        }
        found["requests"] = conn.execute(
            "SELECT count(*) FROM unsubscribe_unsubscriberequest WHERE applied_at IS NOT NULL"
        ).fetchone()[0]
        pending = conn.execute(
            "SELECT count(*) FROM unsubscribe_unsubscriberequest WHERE applied_at IS NULL"
        ).fetchone()[0]
        # Exactly once: no request is the evidence of two history events.
        twice = conn.execute(
            "SELECT count(*) FROM (SELECT evidence_id FROM suppression_suppressionevent "
            "WHERE id > %s GROUP BY evidence_id HAVING count(*) > 1) AS t",
            (marks["history"],),
        ).fetchone()[0]
    wrong = {k: (found[k], v) for k, v in expected.items() if found[k] != v}
    if pending or twice or wrong:
        raise BenchError(
            f"counts differ: {pending} still pending, {twice} applied twice, "
            f"(found, expected) {wrong}"
        )
    return {k: found[k] for k in expected}


# --- the baseline: the same rows by plain INSERT ... SELECT ---------------------------------------

STAGE = [
    # New hashes (sha256 of the old) and event ids, so the rows do not collide with the originals.
    """CREATE TABLE stage_entries AS
       SELECT tenant_id, scope, stream_id, topic_id, scope_key,
              sha256(address_hash) AS address_hash, address, reason, origin, evidence_type_id,
              evidence_id, evidence_note, created_at, updated_at, expires_at, lifted_at
       FROM suppression_suppression WHERE id > %(entries)s""",
    """CREATE TABLE stage_history AS
       SELECT action, reason, origin, scope_key, sha256(address_hash) AS address_hash, note,
              actor_label, via, actor_user_id, actor_api_key_id, evidence_type_id, evidence_id,
              evidence_note, occurred_at
       FROM suppression_suppressionevent WHERE id > %(history)s""",
    """CREATE TABLE stage_opt_outs AS
       SELECT received_at, channel, tenant_id, scope_key, scope_label, address_hash, applied_at,
              provider_due_at, can_spam_due_at, propagated_at, alert_state
       FROM compliance_optoutrequest WHERE id > %(opt_outs)s""",
    """CREATE TABLE stage_records AS
       SELECT actor_user_id, actor_api_key_id, actor_label, via, tenant_id, stream_id, topic_id,
              address, sha256(address_hash) AS address_hash, action, basis, method, jurisdiction,
              occurred_at, recorded_at, ip, user_agent, page_url, form_id, text_id,
              privacy_notice_version, confirmed_at, confirmed_ip, cause, import_key, id AS old_id
       FROM consent_consentrecord WHERE id > %(withdrawals)s""",
    """CREATE TABLE stage_states AS
       SELECT st.tenant_id, sha256(st.address_hash) AS address_hash, st.stream_id, st.topic_id,
              st.action, st.basis, st.since, st.record_id AS old_record
       FROM consent_consentstate AS st WHERE st.record_id > %(withdrawals)s""",
    """CREATE TABLE stage_events AS
       SELECT public_id || 'b' AS public_id, event_type, occurred_at, tenant_id, address_hash,
              body, opt_out_id
       FROM webhooks_webhookevent WHERE id > %(events)s""",
    """CREATE TABLE stage_deliveries AS
       SELECT d.endpoint_id, e.public_id || 'b' AS public_id, d.order_key, d.status, d.attempts,
              d.next_attempt_at, d.last_error
       FROM webhooks_webhookdelivery AS d JOIN webhooks_webhookevent AS e ON e.id = d.event_id
       WHERE d.id > %(deliveries)s""",
    """CREATE TABLE stage_requests AS
       SELECT id, scope_label FROM unsubscribe_unsubscriberequest""",
]

RAW_WRITES = [
    """WITH s AS (
           INSERT INTO suppression_suppression (tenant_id, scope, stream_id, topic_id, scope_key,
               address_hash, address, reason, origin, evidence_type_id, evidence_id,
               evidence_note, created_at, updated_at, expires_at, lifted_at)
           SELECT * FROM stage_entries
           RETURNING id, address_hash, scope_key)
       INSERT INTO suppression_suppressionevent (suppression_id, action, reason, origin,
           scope_key, address_hash, note, actor_label, via, actor_user_id, actor_api_key_id,
           evidence_type_id, evidence_id, evidence_note, occurred_at)
       SELECT s.id, h.action, h.reason, h.origin, h.scope_key, h.address_hash, h.note,
              h.actor_label, h.via, h.actor_user_id, h.actor_api_key_id, h.evidence_type_id,
              h.evidence_id, h.evidence_note, h.occurred_at
       FROM stage_history AS h JOIN s USING (address_hash, scope_key)""",
    """INSERT INTO compliance_optoutrequest (received_at, channel, tenant_id, scope_key,
           scope_label, address_hash, applied_at, provider_due_at, can_spam_due_at,
           propagated_at, alert_state)
       SELECT * FROM stage_opt_outs""",
    """WITH r AS (
           INSERT INTO consent_consentrecord (actor_user_id, actor_api_key_id, actor_label, via,
               tenant_id, stream_id, topic_id, address, address_hash, action, basis, method,
               jurisdiction, occurred_at, recorded_at, ip, user_agent, page_url, form_id,
               text_id, privacy_notice_version, confirmed_at, confirmed_ip, cause, import_key)
           SELECT actor_user_id, actor_api_key_id, actor_label, via, tenant_id, stream_id,
                  topic_id, address, address_hash, action, basis, method, jurisdiction,
                  occurred_at, recorded_at, ip, user_agent, page_url, form_id, text_id,
                  privacy_notice_version, confirmed_at, confirmed_ip, cause, import_key
           FROM stage_records ORDER BY old_id
           RETURNING id, address_hash, tenant_id, stream_id, topic_id, occurred_at)
       INSERT INTO consent_consentstate (tenant_id, address_hash, stream_id, topic_id, action,
           basis, since, record_id)
       SELECT DISTINCT ON (st.address_hash, st.tenant_id, st.stream_id, coalesce(st.topic_id, 0))
              st.tenant_id, st.address_hash, st.stream_id, st.topic_id, st.action, st.basis,
              st.since, r.id
       FROM stage_states AS st
       JOIN r ON r.address_hash = st.address_hash AND r.tenant_id = st.tenant_id
             AND r.stream_id = st.stream_id
             AND r.topic_id IS NOT DISTINCT FROM st.topic_id AND r.occurred_at = st.since
       ORDER BY st.address_hash, st.tenant_id, st.stream_id, coalesce(st.topic_id, 0), r.id DESC""",
    """WITH e AS (
           INSERT INTO webhooks_webhookevent (public_id, event_type, occurred_at, tenant_id,
               address_hash, body, opt_out_id)
           SELECT * FROM stage_events
           RETURNING id, public_id)
       INSERT INTO webhooks_webhookdelivery (endpoint_id, event_id, order_key, status, attempts,
           next_attempt_at, last_error)
       SELECT d.endpoint_id, e.id, d.order_key, d.status, d.attempts, d.next_attempt_at,
              d.last_error
       FROM stage_deliveries AS d JOIN e USING (public_id)""",
    """UPDATE unsubscribe_unsubscriberequest AS u SET applied_at = now(),
           scope_label = r.scope_label
       FROM stage_requests AS r WHERE u.id = r.id""",
]


def _stage(marks: dict[str, int]) -> None:
    with connect(autocommit=True) as conn:
        for statement in STAGE:
            conn.execute(statement, marks)
        for table in (
            "stage_entries",
            "stage_history",
            "stage_records",
            "stage_states",
            "stage_events",
            "stage_deliveries",
            "stage_requests",
            "stage_opt_outs",
        ):
            conn.execute(f"ANALYZE {table}")


def _raw_writes() -> float:
    """Seconds for RAW_WRITES in one transaction, rolled back afterwards."""
    with connect() as conn:
        began = time.perf_counter()
        for statement in RAW_WRITES:
            conn.execute(statement)
        seconds = time.perf_counter() - began
        conn.rollback()
    return seconds


if __name__ == "__main__":
    run_main(main, parse_args)
