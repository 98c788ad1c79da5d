"""A file of several chunks is written on two connections at once, with the result one writer
would give: chunks commit in the file's order, the first row of a repeated address wins, bad
rows are reported in line order, and an import kept waiting by another writer still finishes."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from django.db import connection, transaction

from compliance.models import OptOutRequest
from suppression.models import ImportJob, Origin, Suppression, SuppressionEvent
from suppression.scopes import parse_scope
from suppression.services import entries, importing
from tests.support import require

# The lanes' connections only see what the test commits.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL; the lanes are its)")
    monkeypatch.setattr(importing, "CHUNK_ROWS", 10)


def lanes_used(monkeypatch) -> set[str]:
    """The threads that wrote chunks, filled in as the import runs."""
    names: set[str] = set()
    real = importing._copy_chunk

    def noting_the_lane(*args):
        names.add(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(importing, "_copy_chunk", noting_the_lane)
    return names


def run(tenant, lines: list[str]) -> ImportJob:
    content = ("email,reason,scope,created_at\n" + "".join(lines)).encode()
    job = importing.create_job(content=content, filename="list.csv", tenant=tenant)
    return importing.run_import(job)


def test_a_repeated_address_in_the_next_chunk_keeps_its_first_row(default_tenant, monkeypatch):
    lanes = lanes_used(monkeypatch)
    lines = [
        f"person{i}@example.com,unsubscribe,,2024-01-{1 + i % 28:02d}T00:00:00Z\n"
        for i in range(45)
    ]
    # Line 14 (the second chunk) repeats line 7's address (the first) with a later date.
    lines[12] = "PERSON5@example.com,unsubscribe,,2025-06-01T00:00:00Z\n"
    job = run(default_tenant, lines)

    assert lanes == {"import-lane-0", "import-lane-1"}
    assert job.status == ImportJob.Status.DONE
    assert (job.rows_done, job.rows_added, job.rows_existing, job.rows_bad) == (45, 44, 1, 0)
    kept = Suppression.objects.get(address="person5@example.com")
    assert kept.evidence_note == f"import #{job.pk} line 7"
    assert kept.created_at.isoformat() == "2024-01-06T00:00:00+00:00"
    assert SuppressionEvent.objects.count() == 44
    assert OptOutRequest.objects.filter(channel="import").count() == 44


def test_bad_rows_of_every_chunk_are_kept_in_line_order(default_tenant, monkeypatch):
    lanes_used(monkeypatch)
    lines = [
        f"not-an-address-{i}\n" if i % 7 == 3 else f"person{i}@example.com,unsubscribe,,\n"
        for i in range(60)
    ]
    job = run(default_tenant, lines)

    bad_lines = [i + 2 for i in range(60) if i % 7 == 3]
    assert (job.rows_added, job.rows_bad) == (60 - len(bad_lines), len(bad_lines))
    assert [error["line"] for error in job.errors] == bad_lines


def test_a_failed_chunk_leaves_the_one_after_it_uncommitted(default_tenant, monkeypatch):
    real = importing._copy_chunk
    second_wrote = threading.Event()

    class Announced:
        """The first chunk, as the second waits for it: by then its rows are written."""

        def __init__(self, future):
            self.future = future

        def result(self):
            second_wrote.set()
            return self.future.result()

    def first_fails_after_the_second_wrote(job, chunk, targets, evidence_type, actor, before):
        first_line = min(line for rows in chunk.members.values() for line, _ in rows)
        if first_line == 2:  # the file's first chunk
            assert second_wrote.wait(30)
            raise ConnectionError("the database went away mid-chunk")
        return real(job, chunk, targets, evidence_type, actor, Announced(before))

    monkeypatch.setattr(importing, "_copy_chunk", first_fails_after_the_second_wrote)
    lines = [f"person{i}@example.com,unsubscribe,,\n" for i in range(20)]
    content = ("email,reason,scope,created_at\n" + "".join(lines)).encode()
    # Two chunks and a third, so the file is written in two lanes.
    content += b"late@example.com,unsubscribe,,\n"
    job = importing.create_job(content=content, filename="list.csv", tenant=default_tenant)
    with pytest.raises(ConnectionError):
        importing.run_import(job)

    job.refresh_from_db()
    assert (job.status, job.rows_done, job.rows_added) == (ImportJob.Status.FAILED, 0, 0)
    assert not Suppression.objects.exists()


def until_the_lanes_are_stuck(*, timeout: float) -> None:
    """Until one session of this database waits for a lock while two others sit in open
    transactions: the other writer, and the second lane waiting for the first."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'),"
                " count(*) FILTER (WHERE state = 'idle in transaction')"
                " FROM pg_stat_activity WHERE datname = current_database()"
            )
            waiting, idle = cursor.fetchone()
            if waiting >= 1 and idle >= 2:
                return
            time.sleep(0.02)
    pytest.fail("the first lane never waited for the other writer")


def test_an_import_kept_waiting_by_another_writer_finishes_on_one_connection(
    default_tenant, monkeypatch
):
    """Another writer holds an address of the first chunk, then wants one of the second: with
    the second lane waiting for the first, no one would move. The first lane gives way."""
    monkeypatch.setattr(importing, "LANE_LOCK_TIMEOUT", "1s")
    lanes = lanes_used(monkeypatch)
    one_lane = []
    real_one_lane = importing._copy_in_one_lane
    monkeypatch.setattr(
        importing,
        "_copy_in_one_lane",
        lambda *args: one_lane.append(1) or real_one_lane(*args),
    )
    target = parse_scope(default_tenant, None, reason="unsubscribe")
    holding, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def other_writer():
        from django.db import connection as own

        try:
            with transaction.atomic():
                entries.suppress(
                    target=target,
                    address="person3@example.com",
                    reason="unsubscribe",
                    origin=Origin.API,
                )
                holding.set()
                release.wait(30)
                entries.suppress(
                    target=target,
                    address="person13@example.com",
                    reason="unsubscribe",
                    origin=Origin.API,
                )
        except BaseException as exc:
            failures.append(exc)
        finally:
            own.close()

    writer = threading.Thread(target=other_writer)
    writer.start()
    assert holding.wait(30)
    lines = [f"person{i}@example.com,unsubscribe,,\n" for i in range(30)]
    importer_done = threading.Event()
    outcome: list[object] = []

    def importer():
        from django.db import connection as own

        try:
            outcome.append(run(default_tenant, lines))
        except BaseException as exc:
            outcome.append(exc)
        finally:
            own.close()
            importer_done.set()

    thread = threading.Thread(target=importer)
    thread.start()
    # Let the other writer go on once the first lane waits for it: the second lane has written
    # its chunk by then, so the writer's next row waits for the second lane.
    until_the_lanes_are_stuck(timeout=30)
    release.set()
    writer.join(60)
    assert not writer.is_alive() and not failures
    assert importer_done.wait(60), "the import never finished"
    thread.join(10)

    job = outcome[0]
    assert isinstance(job, ImportJob), job
    assert {"import-lane-0", "import-lane-1"} <= lanes
    assert one_lane == [1]  # the rest of the file, after the first lane gave way
    assert job.status == ImportJob.Status.DONE
    assert (job.rows_done, job.rows_added, job.rows_existing) == (30, 28, 2)
    assert Suppression.objects.count() == 30
    assert Suppression.objects.filter(origin=Origin.IMPORT).count() == 28
    assert SuppressionEvent.objects.filter(origin=Origin.IMPORT).count() == 28


def test_a_file_already_listed_is_written_one_chunk_at_a_time(default_tenant, monkeypatch):
    """Skipping listed rows is little work for the database: after a chunk that added (almost)
    nothing, the next starts only once the chunk in flight is done, as on one connection."""
    lines = [f"person{i}@example.com,unsubscribe,,\n" for i in range(60)]
    run(default_tenant, lines)
    spans: dict[int, list[float]] = {}
    real = importing._copy_chunk

    def timed(job, chunk, *rest):
        first_line = min(line for rows in chunk.members.values() for line, _ in rows)
        spans[first_line] = [time.monotonic()]
        try:
            return real(job, chunk, *rest)
        finally:
            spans[first_line].append(time.monotonic())

    monkeypatch.setattr(importing, "_copy_chunk", timed)
    again = run(default_tenant, lines)

    assert (again.rows_done, again.rows_added, again.rows_existing) == (60, 0, 60)
    ordered = [spans[line] for line in sorted(spans)]
    assert len(ordered) == 6
    # The first two may overlap, as any two may; from the third on, each starts after the one
    # before it ended.
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(ordered[1:]))
