"""Erasure of one address (GDPR Art. 17) in a large database, beside a bare lookup of the same
rows by hash.

Data: --suppressions entries (bench/common.py's load), --consents consent records with their
states (bench/send_decisions.py's load), --reports stored DSN reports (gzip-compressed, each
naming its own recipient, with their mention index rows), all written in SQL or COPY. Then each
of --targets addresses is put in a few rows of each: a global hard bounce and a commercial
unsubscribe (through the suppression service, so with their history, opt-out records and consent
withdrawals), three consent records with evidence, two unsubscribe requests and five stored
reports (through fbl's storing service, one with a base64 part) — and a verified erasure request.

Timed: `compliance.dsr.erasure.erase_for(request)` for each target (the whole erasure: every
step, batch transactions, the redaction and recompression of the reports, the fulfilment), and a
bare lookup by hash over one psycopg connection of the rows it has to change (suppressions and
their history, consent records, pending confirmations, unsubscribe requests, the reports through
the mention index with their compressed bodies, requests). Median of 5 for the lookup.

Target: each erasure under 2 seconds.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import gzip
import hashlib
import os
import secrets
import statistics
import sys
import time

import common
import send_decisions

TARGET_SECONDS = 2.0

LOOKUPS = [
    "SELECT id, address, evidence_note FROM suppression_suppression WHERE address_hash = %(h)s",
    "SELECT e.id, e.note, e.evidence_note FROM suppression_suppressionevent e "
    "WHERE e.suppression_id IN (SELECT id FROM suppression_suppression WHERE address_hash = %(h)s)",
    "SELECT id, address, ip, user_agent, page_url FROM consent_consentrecord "
    "WHERE address_hash = %(h)s",
    "SELECT id, address, evidence FROM consent_pendingconfirmation WHERE address_hash = %(h)s",
    "SELECT id, address, ip, user_agent FROM unsubscribe_unsubscriberequest "
    "WHERE address_hash = %(h)s",
    "SELECT m.id, m.raw_gzip, m.parsed, m.note FROM fbl_mention x "
    "JOIN fbl_inboundmessage m ON m.id = x.message_id WHERE x.address_hash = %(h)s",
    "SELECT id, address FROM dsr_datasubjectrequest WHERE address_hash = %(h)s",
]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suppressions", type=common.positive_int, default=10_000_000)
    parser.add_argument("--consents", type=common.positive_int, default=1_000_000)
    parser.add_argument("--reports", type=common.positive_int, default=100_000)
    parser.add_argument(
        "--targets",
        type=common.positive_int,
        default=3,
        help="addresses erased, one after another (default 3)",
    )
    return parser.parse_args(argv)


def report(recipient: str, *, encoded: bool = False) -> bytes:
    enclosed = (
        f"From: news@sender.example\r\nTo: {recipient}\r\n"
        "Subject: Offers\r\nMessage-ID: <m@sender.example>\r\n"
    )
    if encoded:
        third = (
            "Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(enclosed.encode()).decode().replace("\n", "\r\n")
        )
    else:
        third = f"Content-Type: text/rfc822-headers\r\n\r\n{enclosed}"
    return (
        "From: MAILER-DAEMON@mx.example\r\nTo: bounces@sender.example\r\n"
        "Subject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        f"--B\r\nContent-Type: text/plain\r\n\r\nDelivery to {recipient} failed.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        f"--B\r\n{third}\r\n--B--\r\n"
    ).encode()


def load_reports(count: int) -> float:
    """`count` stored DSN reports, each naming `report{i}@...`, with their mention rows (ids
    given, so one COPY per table)."""
    began = time.monotonic()
    now = datetime.datetime.now(datetime.UTC)
    with common.connect() as conn:
        with conn.cursor().copy(
            "COPY fbl_inboundmessage (id, received_at, source, operator_level, envelope_sender, "
            "envelope_recipient, raw_gzip, size, truncated, sha256, times_received, kind, "
            "status, note, feedback_type, parsed, dkim_domain, dkim_results) FROM STDIN"
        ) as copy:
            for i in range(1, count + 1):
                raw = report(f"report{i}@example{i % 1000}.com")
                copy.write_row(
                    (
                        i,
                        now,
                        "pipe",
                        True,
                        "",
                        "",
                        gzip.compress(raw, 6),
                        len(raw),
                        False,
                        hashlib.sha256(raw).hexdigest(),
                        1,
                        "dsn",
                        "processed",
                        "bench",
                        "",
                        None,
                        "",
                        "",
                    )
                )
        with conn.cursor().copy("COPY fbl_mention (address_hash, message_id) FROM STDIN") as copy:
            for i in range(1, count + 1):
                copy.write_row((common.python_hash(f"report{i}@example{i % 1000}.com"), i))
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('fbl_inboundmessage', 'id'), %s)", (count,)
        )
        conn.commit()
    with common.connect(autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE fbl_inboundmessage")
        conn.execute("VACUUM ANALYZE fbl_mention")
    seconds = time.monotonic() - began
    common.log(f"loaded {count:,} stored reports and their mentions in {seconds:.1f}s")
    return seconds


def setup_django() -> None:
    os.environ.update(common.bench_env())
    import django

    django.setup()


def place_target(address: str, tenant_id: int):
    """The address in a few rows of each table, through the services where they exist; returns
    a verified erasure request for it."""
    from django.utils import timezone

    from compliance import deadlines
    from compliance.consent.models import ConsentRecord
    from compliance.dsr.models import DataSubjectRequest
    from compliance.models import Stream, Tenant
    from fbl import services as fbl_services
    from suppression import rules
    from suppression import services as suppression
    from suppression.models import Origin
    from suppression.scopes import Target
    from unsubscribe.models import UnsubscribeRequest

    tenant = Tenant.objects.get(pk=tenant_id)
    stream = Stream.objects.get(tenant=tenant, slug="marketing")
    digest = common.python_hash(address)
    suppression.suppress(
        target=Target(None, rules.GLOBAL),
        address=address,
        reason=rules.HARD_BOUNCE,
        origin=Origin.RELAY,
        evidence_note=f"bounce of {address}",
    )
    suppression.suppress(
        target=Target(tenant, rules.COMMERCIAL),
        address=address,
        reason=rules.UNSUBSCRIBE,
        origin=Origin.API,
    )
    now = timezone.now()
    for n in range(3):
        ConsentRecord.objects.create(
            actor_label="bench",
            via="api",
            tenant=tenant,
            stream=stream,
            address=address,
            address_hash=digest,
            action="granted",
            basis="consent",
            method="web_form",
            occurred_at=now,
            ip="192.0.2.10",
            user_agent=f"agent {n}",
            page_url=f"https://acme.example/?e={address}",
        )
    for _ in range(2):
        UnsubscribeRequest.objects.create(
            received_at=now,
            applied_at=now,
            channel="one_click",
            tenant=tenant,
            stream=stream,
            address=address,
            address_hash=digest,
            ip="192.0.2.11",
            user_agent="Mail",
        )
    for n in range(5):
        fbl_services.store_inbound_message(report(address.upper(), encoded=n == 0), source="pipe")
    return DataSubjectRequest.objects.create(
        kind="erasure",
        address=address,
        address_hash=digest,
        received_at=now,
        due=deadlines.dsr_due(now),
        status=DataSubjectRequest.Status.VERIFIED,
        verified_at=now,
        verification_token_hash=secrets.token_hex(32),
        verification_expires_at=now,
    )


def bare_lookup(digest: bytes) -> float:
    with common.connect(autocommit=True, prepare_threshold=None) as conn:
        for sql in LOOKUPS:  # warm-up
            conn.execute(sql, {"h": digest}).fetchall()
        times = []
        for _ in range(5):
            began = time.perf_counter()
            for sql in LOOKUPS:
                conn.execute(sql, {"h": digest}).fetchall()
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def main(args: argparse.Namespace) -> int:
    tenant_id, _ = common.prepare_loaded_database(args.suppressions)
    with common.connect() as conn:
        stream_id = conn.execute(
            "SELECT id FROM compliance_stream WHERE tenant_id = %s AND slug = 'marketing'",
            (tenant_id,),
        ).fetchone()[0]
    send_decisions.load_consents(args.consents, tenant_id=tenant_id, stream_id=stream_id)
    load_reports(args.reports)
    setup_django()
    from compliance.dsr import erasure
    from compliance.dsr.models import DataSubjectRequest

    lines = []
    seconds = []
    for n in range(args.targets):
        address = f"erase{n}@bench-target.example"
        request = place_target(address, tenant_id)
        lookup = bare_lookup(common.python_hash(address))
        began = time.perf_counter()
        erasure.erase_for(request)
        elapsed = time.perf_counter() - began
        request.refresh_from_db()
        if request.status != DataSubjectRequest.Status.FULFILLED:
            raise common.BenchError(f"erasure of target {n} ended {request.status}")
        with common.connect() as conn:
            left = conn.execute(
                "SELECT count(*) FROM suppression_suppression WHERE address = %s", (address,)
            ).fetchone()[0]
        if left:
            raise common.BenchError(f"{left} suppression rows still hold {address}")
        seconds.append(elapsed)
        common.log(
            f"target {n}: erasure {elapsed * 1000:.1f} ms, bare lookup {lookup * 1000:.2f} ms"
        )
        lines.append(
            (
                f"target {n}",
                f"erasure {elapsed * 1000:.1f} ms; bare lookup of the same "
                f"rows {lookup * 1000:.2f} ms",
            )
        )
    worst = max(seconds)
    lines += [
        (
            "data",
            f"{args.suppressions:,} suppressions, {args.consents:,} consents, "
            f"{args.reports:,} stored reports",
        ),
        (
            "erasure, median / worst",
            f"{statistics.median(seconds) * 1000:.1f} / {worst * 1000:.1f} ms",
        ),
        (
            "target",
            f"< {TARGET_SECONDS:.0f} s each: {common.verdict(worst, TARGET_SECONDS, at_most=True)}",
        ),
    ]
    common.print_summary("erasure of one address", lines)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(common.ROOT))
    common.run_main(main, parse_args)
