"""Downstream webhook delivery beside a bare loop posting the same signed bodies.

10,000 opt-outs (real `OptOutRequest` rows, their `optout.created` events in the outbox) fan out
to 3 endpoints on a local receiver (bench/webhook_receiver.py, a process of its own): 30,000
deliveries. The service's run drains each endpoint as its Celery task would
(`deliver_endpoint`: claim a batch, sign, POST, record the outcomes, stop the opt-outs' clocks),
the three endpoints side by side. The baseline posts the very same bodies, signed beforehand,
with the same HTTP client (a requests Session per endpoint), the same concurrency per endpoint
and the same three endpoints side by side, and records nothing. Rounds alternate the two.

Target (DESIGN.md): deliveries per second at least 0.5 of the bare loop's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

TARGET = 0.5
ENDPOINTS = 3


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--opt-outs", type=common.positive_int, default=10_000)
    parser.add_argument("--rounds", type=common.positive_int, default=2)
    parser.add_argument("--concurrency", type=common.positive_int, default=8)
    return parser.parse_args(argv)


def setup_django(concurrency: int) -> None:
    os.environ.update(
        common.bench_env(
            {
                "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
                "WEBHOOK_CONCURRENCY": str(concurrency),
                "WEBHOOK_RUN_SECONDS": "3600",
            }
        )
    )
    import django

    django.setup()
    # Deliveries are driven by the benchmark, not by the nudges after each commit.
    from compliance.webhooks import dispatch

    dispatch.kick = lambda *args, **kwargs: None


def start_receiver() -> tuple[subprocess.Popen, int]:
    port = common.free_port()
    process = subprocess.Popen(
        [str(common.PYTHON), str(common.ROOT / "bench" / "webhook_receiver.py"), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    if process.stdout.readline().strip() != "ready":
        raise common.BenchError("the receiver did not start")
    return process, port


def record_opt_outs(count: int, tenant_id: int) -> None:
    """`count` opt-outs as the service records them, each with its event for every endpoint."""
    import datetime

    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from compliance import deadlines
    from compliance.models import OptOutRequest, Tenant
    from compliance.webhooks.services import outbox
    from suppression import addresses, rules
    from suppression.scopes import Target

    tenant = Tenant.objects.get(pk=tenant_id)
    target = Target(tenant, rules.COMMERCIAL)
    key = settings.ADDRESS_HASH_KEY.encode()
    now = timezone.now()
    for start in range(0, count, 1000):
        with transaction.atomic():
            rows, names = [], []
            for n in range(start, min(count, start + 1000)):
                address = f"optout{n}@bench-webhooks.example"
                names.append(address)
                received = now - datetime.timedelta(seconds=count - n)
                due = deadlines.opt_out_due(received, tenant.opt_out_policy)
                rows.append(
                    OptOutRequest(
                        received_at=received,
                        channel=OptOutRequest.Channel.ONE_CLICK,
                        tenant=tenant,
                        scope_key=target.key,
                        scope_label=target.label,
                        address_hash=addresses.address_hash(address, key),
                        applied_at=now,
                        provider_due_at=due.provider_due_at,
                        can_spam_due_at=due.can_spam_due_at,
                    )
                )
            for request, address in zip(
                OptOutRequest.objects.bulk_create(rows), names, strict=True
            ):
                outbox.opt_out_created(request, target, address, rules.UNSUBSCRIBE)


def bodies() -> dict[int, list[tuple[str, str]]]:
    """Per endpoint, the (event id, body) of each delivery, in delivery order."""
    from compliance.webhooks.models import WebhookDelivery

    found: dict[int, list[tuple[str, str]]] = {}
    rows = WebhookDelivery.objects.order_by("event_id").values_list(
        "endpoint_id", "event__public_id", "event__body"
    )
    for endpoint_id, event_id, body in rows:
        found.setdefault(endpoint_id, []).append((event_id, body))
    return found


def bare_loop(endpoints, work, concurrency: int) -> float:
    """POST every pre-signed body, the endpoints side by side; deliveries per second."""
    from django.utils import timezone

    from compliance.webhooks import signing
    from compliance.webhooks.services.delivery import _session

    signed = {}
    for endpoint in endpoints:
        signer = signing.Signer(endpoint.secret)
        at = timezone.now()
        signed[endpoint.pk] = [
            (body.encode(), signer.headers(event_id, body, at))
            for event_id, body in work[endpoint.pk]
        ]
    failures = []

    def drain(endpoint) -> None:
        with _session(concurrency) as session, ThreadPoolExecutor(concurrency) as pool:

            def post(item):
                data, headers = item
                response = session.post(
                    endpoint.url, data=data, headers=headers, timeout=10, allow_redirects=False
                )
                if response.status_code != 200:
                    failures.append(response.status_code)

            list(pool.map(post, signed[endpoint.pk]))

    total = sum(len(v) for v in signed.values())
    began = time.perf_counter()
    threads = [threading.Thread(target=drain, args=(e,)) for e in endpoints]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise common.BenchError(f"the bare loop got {len(failures)} non-200 answers")
    return total / elapsed


def service_run(endpoints) -> float:
    from django.db import connection

    from compliance.models import OptOutRequest
    from compliance.webhooks.models import WebhookDelivery
    from compliance.webhooks.services import delivery

    pending = WebhookDelivery.objects.filter(status="pending").count()
    results = {}

    def drain(endpoint_id: int) -> None:
        try:
            results[endpoint_id] = delivery.deliver_endpoint(endpoint_id)
        finally:
            connection.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=drain, args=(e.pk,)) for e in endpoints]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    delivered = sum(t.delivered for t in results.values())
    if delivered != pending:
        raise common.BenchError(f"{delivered} of {pending} deliveries delivered")
    still_open = OptOutRequest.objects.filter(propagated_at__isnull=True).count()
    if still_open:
        raise common.BenchError(f"{still_open} opt-outs not propagated after every delivery")
    return delivered / elapsed


def reset() -> None:
    """Every delivery pending again and every clock running, for the next round."""
    from django.utils import timezone

    from compliance.models import OptOutRequest
    from compliance.webhooks.models import WebhookDelivery

    WebhookDelivery.objects.update(
        status="pending", attempts=0, next_attempt_at=timezone.now(), delivered_at=None
    )
    OptOutRequest.objects.update(propagated_at=None)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE webhooks_webhookdelivery")
        cursor.execute("VACUUM ANALYZE compliance_optoutrequest")


def main(args: argparse.Namespace) -> int:
    common.create_database()
    tenant_id = common.default_tenant_id()
    setup_django(args.concurrency)
    receiver, port = start_receiver()
    try:
        from compliance.webhooks.services import endpoints as endpoint_services

        endpoints = [
            endpoint_services.add_endpoint(
                url=f"http://127.0.0.1:{port}/hook/{n}", event_types="optout.created"
            )
            for n in range(ENDPOINTS)
        ]
        common.log(f"recording {args.opt_outs:,} opt-outs for {ENDPOINTS} endpoints")
        record_opt_outs(args.opt_outs, tenant_id)
        reset()
        work = bodies()
        deliveries = sum(len(v) for v in work.values())
        lines = []
        ratios = []
        for n in range(1, args.rounds + 1):
            common.wait_quiet()
            bare = bare_loop(endpoints, work, args.concurrency)
            common.log(f"round {n}: bare loop {bare:,.0f} deliveries/s")
            ours = service_run(endpoints)
            common.log(f"round {n}: service {ours:,.0f} deliveries/s")
            reset()
            ratios.append(ours / bare)
            lines.append(
                (
                    f"round {n}",
                    f"service {ours:,.0f}/s, bare loop {bare:,.0f}/s: {ours / bare:.2f}",
                )
            )
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    worst = min(ratios)
    lines += [
        (
            "work",
            f"{args.opt_outs:,} opt-outs x {ENDPOINTS} endpoints = {deliveries:,} deliveries, "
            f"{args.concurrency} at once per endpoint",
        ),
        (
            "target",
            f">= {TARGET} of the bare loop (worst round {worst:.2f}): "
            f"{common.verdict(worst, TARGET, at_most=False)}",
        ),
    ]
    common.print_summary("downstream webhooks", lines)
    return 0


if __name__ == "__main__":
    common.run_main(main, parse_args)
