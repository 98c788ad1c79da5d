"""Deliveries run on a real Celery worker through the real broker, on their own queue."""

from __future__ import annotations

import os
import uuid

import pytest
from celery import Celery

from compliance.models import OptOutRequest
from compliance.webhooks import dispatch
from compliance.webhooks.models import WebhookDelivery
from tests.support import require, same_database_env, start_celery_worker


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_sweep_on_a_real_worker_delivers_through_the_webhook_queue(
    endpoint, receiver, suppress, monkeypatch
):
    broker = os.environ.get("CELERY_BROKER_URL", "")
    require(broker.startswith(("redis://", "amqp://")), "a Celery broker (CELERY_BROKER_URL)")
    monkeypatch.setattr(dispatch, "kick", lambda *args, **kwargs: None)  # the worker's job here
    endpoint(types="optout.created")
    suppress("pat@example.com", "unsubscribe")
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.PENDING

    queue = f"test-{uuid.uuid4().hex}"
    env = same_database_env(
        CELERY_BROKER_URL=broker,
        WEBHOOK_QUEUE=f"{queue}-webhooks",
        WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
    )
    worker = start_celery_worker(f"{queue},{queue}-webhooks", env)
    producer = Celery("producer", broker=broker, set_as_current=False)
    try:
        producer.send_task("webhooks.sweep", queue=queue)
        (sent,) = receiver.wait_for("/hook", 1, timeout=60)
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
        producer.close()
    assert sent.json["data"]["address"] == "pat@example.com"
    assert "webhooks.deliver" in output  # the sweep queued the delivery on the webhook queue
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.DELIVERED
    assert OptOutRequest.objects.get().propagated_at is not None
