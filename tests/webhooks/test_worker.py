"""Deliveries run on a real Celery worker through the real broker, on their own queue."""

from __future__ import annotations

import uuid

import pytest

from compliance.models import OptOutRequest
from compliance.webhooks import dispatch
from compliance.webhooks.models import WebhookDelivery
from tests.support import celery_producer, delete_queues, same_database_env, start_celery_worker


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_sweep_on_a_real_worker_delivers_through_the_webhook_queue(
    endpoint, receiver, suppress, monkeypatch, celery_broker
):
    broker = celery_broker
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
    producer = celery_producer(broker, monkeypatch)
    try:
        producer.send_task("webhooks.sweep", queue=queue)
        (sent,) = receiver.wait_for("/hook", 1, timeout=60)
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
        delete_queues(producer, queue, f"{queue}-webhooks")
        producer.close()
    assert sent.json["data"]["address"] == "pat@example.com"
    assert "webhooks.deliver" in output  # the sweep queued the delivery on the webhook queue
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.DELIVERED
    assert OptOutRequest.objects.get().propagated_at is not None
