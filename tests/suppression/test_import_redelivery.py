"""An import interrupted anywhere is finished by its next run, and counts every row once.

Tasks are acknowledged only once they finish (CELERY_TASK_ACKS_LATE), so a worker that dies
mid-import leaves the task to be handed to another worker: RabbitMQ does so when the dead
worker's connection drops, Redis once CELERY_VISIBILITY_TIMEOUT has passed.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.db import connection

from compliance import locks
from compliance.models import OptOutRequest
from suppression.models import ImportJob, Suppression, SuppressionEvent
from suppression.services import importing
from tests.support import (
    celery_producer,
    delete_queues,
    kill_celery_worker,
    same_database_env,
    start_celery_worker,
)

# The worker subprocess reads what the test writes, so the test commits for real.
pytestmark = pytest.mark.django_db(transaction=True)


def csv_of(rows: int, *, start: int = 0) -> bytes:
    lines = "".join(f"person{i}@example.com,unsubscribe\n" for i in range(start, start + rows))
    return ("email,reason\n" + lines).encode()


def queued_job(default_tenant, rows: int) -> ImportJob:
    return importing.create_job(content=csv_of(rows), filename="list.csv", tenant=default_tenant)


def assert_imported_once(job: ImportJob, rows: int) -> None:
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    assert (job.rows_done, job.rows_added, job.rows_existing, job.rows_bad) == (rows, rows, 0, 0)
    assert job.percent == 100
    assert Suppression.objects.count() == rows
    # One history row and one opt-out record per address: nothing applied twice.
    assert SuppressionEvent.objects.count() == rows
    assert SuppressionEvent.objects.values("address_hash").distinct().count() == rows
    assert OptOutRequest.objects.filter(channel="import").count() == rows


def test_an_import_stopped_between_chunks_resumes_and_counts_each_row_once(
    default_tenant, monkeypatch
):
    monkeypatch.setattr(importing, "CHUNK_ROWS", 10)
    job = queued_job(default_tenant, 35)
    run_chunk_name = "_copy_chunk" if connection.vendor == "postgresql" else "_row_by_row_chunk"
    real = getattr(importing, run_chunk_name)
    calls = []

    def dies_on_the_third_chunk(*args):
        calls.append(1)
        if len(calls) == 3:
            raise ConnectionError("the worker lost its database mid-import")
        return real(*args)

    monkeypatch.setattr(importing, run_chunk_name, dies_on_the_third_chunk)
    with pytest.raises(ConnectionError):
        importing.run_import(job)
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.rows_added) == (ImportJob.Status.FAILED, 20, 20)

    monkeypatch.setattr(importing, run_chunk_name, real)
    importing.run_import(job)
    assert_imported_once(job, 35)


def test_a_finished_import_run_again_changes_nothing(default_tenant):
    job = queued_job(default_tenant, 5)
    importing.run_import(job)
    finished = ImportJob.objects.values().get(pk=job.pk)
    importing.run_import(job)
    assert ImportJob.objects.values().get(pk=job.pk) == finished
    assert_imported_once(job, 5)


def test_an_import_another_process_is_running_is_left_to_it(default_tenant):
    if connection.vendor != "postgresql":
        pytest.skip("one process at a time is PostgreSQL's advisory lock; SQLite runs one")
    job = queued_job(default_tenant, 5)
    taken, release = threading.Event(), threading.Event()

    def other_worker():
        from django.db import connection as own

        with locks.exclusive(importing._LOCK_CLASS, job.pk) as mine:
            assert mine
            taken.set()
            release.wait(30)
        own.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert taken.wait(30)
        importing.run_import(job)
        job.refresh_from_db()
        assert (job.status, job.rows_done) == (ImportJob.Status.QUEUED, 0)
    finally:
        release.set()
        thread.join(30)
    importing.run_import(job)
    assert_imported_once(job, 5)


# Three chunks: the worker is killed once the first has committed, with two (seconds of work)
# still to go.
REDELIVERY_ROWS = 3 * importing.CHUNK_ROWS


def wait_for(condition, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"waited {timeout}s for {what}")


@pytest.mark.integration
def test_an_import_whose_worker_is_killed_is_redelivered_and_finished_once(
    default_tenant, celery_broker, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("a worker subprocess shares the test database on PostgreSQL only")
    job = queued_job(default_tenant, REDELIVERY_ROWS)
    queue = f"test-{uuid.uuid4().hex}"
    # A short visibility timeout: Redis hands the dead worker's task on within seconds.
    env = same_database_env(CELERY_BROKER_URL=celery_broker, CELERY_VISIBILITY_TIMEOUT="2")
    producer = celery_producer(celery_broker, monkeypatch)
    first = start_celery_worker(queue, env)
    second = None
    try:
        producer.send_task("suppression.run_import_job", args=[job.pk], queue=queue)

        def mid_import():
            state = ImportJob.objects.values("status", "rows_done").get(pk=job.pk)
            return state["status"] == ImportJob.Status.RUNNING and state["rows_done"] > 0

        wait_for(mid_import, timeout=60, what="the first worker to commit a chunk")
        first_log = kill_celery_worker(first)
        job.refresh_from_db()
        assert job.status == ImportJob.Status.RUNNING, "the import ended before the kill"
        assert 0 < job.rows_done < REDELIVERY_ROWS
        assert Suppression.objects.count() == job.rows_done  # the chunk in flight rolled back
        assert "suppression.run_import_job" in first_log

        second = start_celery_worker(queue, env)
        wait_for(
            lambda: ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.DONE).exists(),
            timeout=60,
            what="the redelivered import to finish on the second worker",
        )
    finally:
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.terminate()
        second_log = second.communicate(timeout=30)[0] if second is not None else ""
        if first.poll() is None:
            first.communicate(timeout=30)
        delete_queues(producer, queue)
        producer.close()
    assert "task suppression.run_import_job SUCCESS" in second_log
    assert_imported_once(job, REDELIVERY_ROWS)
