"""Tasks run eagerly without a broker, and on a real worker when one is configured."""

import uuid

import pytest

from compliance.celery import app
from compliance.tasks import ping
from tests.support import (
    celery_producer,
    delete_queues,
    result_backend,
    service_env,
    start_celery_worker,
)


def test_tasks_run_in_process_without_a_broker(settings):
    assert settings.CELERY_TASK_ALWAYS_EAGER
    result = ping.delay()
    assert result.successful()
    assert result.get()["pong"] is True


def test_one_celery_app_discovers_the_service_tasks():
    assert app.main == "compliance"
    assert "compliance.ping" in app.tasks


@pytest.mark.integration
def test_a_real_worker_runs_a_task_sent_through_the_real_broker(celery_broker, monkeypatch):
    backend = result_backend(celery_broker)
    queue = f"test-{uuid.uuid4().hex}"
    env = service_env(CELERY_BROKER_URL=celery_broker, CELERY_RESULT_BACKEND=backend)
    worker = start_celery_worker(queue, env)
    producer = celery_producer(celery_broker, monkeypatch, backend=backend)
    try:
        result = producer.send_task("compliance.ping", queue=queue)
        answer = result.get(timeout=60)
        assert answer["pong"] is True
        assert result.state == "SUCCESS"
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
        delete_queues(producer, queue)
        producer.close()
    assert "compliance.ping" in output
