"""`manage.py export_suppressions`: the hash file a relay's mirror starts from, and CSV."""

from __future__ import annotations

import csv
import io
import threading

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction

from suppression import selectors
from suppression.addresses import hash_address
from tests.support import (
    require,
    run_manage,
    same_database_env,
    wait_until_the_feed_shows_every_change,
)

pytestmark = pytest.mark.django_db(transaction=True)


def digest(address: str) -> str:
    return hash_address(address, settings.ADDRESS_HASH_KEY.encode()).hex()


def export(tmp_path, *args: str) -> tuple[dict[str, str], list[str]]:
    """Run the command into a file; (header fields, the lines after the header)."""
    out = tmp_path / "export.txt"
    call_command("export_suppressions", *args, "--output", str(out), stderr=io.StringIO())
    first, *rest = out.read_text().splitlines()
    words = first.split()
    assert words[:2] == ["#", "suppression-hashes/1"], first
    return dict(w.split("=", 1) for w in words[2:]), rest


@pytest.fixture
def listed(suppress, make_tenant):
    """Entries of every kind; their addresses by what they are."""
    other = make_tenant("acme")
    suppress("optout@example.org", "unsubscribe")  # default tenant, commercial
    suppress("bounced@example.org", "hard_bounce")  # default tenant, global never-mail
    suppress("complained@example.org", "complaint", scope="global")  # global, not never-mail
    suppress("streamonly@example.org", "unsubscribe", scope="stream:marketing")
    suppress("shared@example.org", "hard_bounce", tenant=None)  # every tenant
    suppress("acme@example.org", "unsubscribe", tenant=other)  # another tenant's
    return other


def test_a_stream_export_holds_exactly_the_hashes_that_block_that_stream(tmp_path, listed):
    header, hashes = export(tmp_path, "--stream", "marketing")
    assert (header["tenant"], header["stream"], header["kind"]) == (
        "default",
        "marketing",
        "commercial",
    )
    expected = ["optout", "bounced", "complained", "streamonly", "shared"]
    assert hashes == sorted(digest(f"{name}@example.org") for name in expected)

    header, hashes = export(tmp_path, "--stream", "transactional")
    assert header["kind"] == "transactional"
    # A transactional stream is blocked only by "never mail" reasons in a global scope.
    assert hashes == sorted(digest(f"{n}@example.org") for n in ("bounced", "shared"))


def test_without_a_stream_every_active_entry_of_the_tenant_and_shared_ones(
    tmp_path, listed, suppress
):
    from suppression import services

    services.lift(suppression=suppress("lifted@example.org", "manual"), note="asked")
    header, hashes = export(tmp_path, "--tenant", "acme")
    assert (header["tenant"], header["stream"], header["kind"]) == ("acme", "*", "all")
    assert hashes == sorted(digest(f"{n}@example.org") for n in ("acme", "shared"))
    _, everything = export(tmp_path)
    assert len(everything) == 6  # every tenant's, each hash once, the lifted one left out


def test_the_cursor_lets_the_feed_continue_exactly_after_the_export(tmp_path, listed, suppress):
    # Another session's open transaction anywhere in the cluster holds the feed (and so the
    # export's cursor) back: let the listed entries' changes out first.
    wait_until_the_feed_shows_every_change()
    header, _ = export(tmp_path, "--stream", "marketing")
    suppress("after@example.org", "unsubscribe")
    wait_until_the_feed_shows_every_change()
    events, _ = selectors.changes_since(
        selectors.Cursor.parse(header["cursor"]), limit=100, tenant_ids=None
    )
    assert [bytes(e.address_hash).hex() for e in events] == [digest("after@example.org")]


def test_a_change_committed_while_the_export_runs_is_in_the_file_or_after_the_cursor(
    tmp_path, listed, suppress
):
    """The file and its cursor come from one snapshot: a writer that commits meanwhile is
    either in the file, or found in the feed after the cursor, never lost between them, even
    when a younger transaction committed before the export (the feed is in transaction order,
    not commit order)."""
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    started, release = threading.Event(), threading.Event()

    def slow_writer():
        try:
            with transaction.atomic():
                suppress("late@example.org", "unsubscribe")
                started.set()
                release.wait(10)
        finally:
            connections.close_all()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert started.wait(10)
    suppress("younger@example.org", "unsubscribe")  # begins after the writer, commits first
    header, hashes = export(tmp_path, "--stream", "marketing")  # while the writer is open
    release.set()
    writer.join(10)
    wait_until_the_feed_shows_every_change()
    late = digest("late@example.org")
    events, _ = selectors.changes_since(
        selectors.Cursor.parse(header["cursor"]), limit=100, tenant_ids=None
    )
    assert late not in hashes and digest("younger@example.org") in hashes
    assert late in [bytes(e.address_hash).hex() for e in events]


def test_csv_lists_the_same_entries_with_addresses(tmp_path, listed):
    out = tmp_path / "export.csv"
    call_command(
        "export_suppressions",
        "--format",
        "csv",
        "--stream",
        "transactional",
        "--output",
        str(out),
        stderr=io.StringIO(),
    )
    rows = list(csv.DictReader(out.open(newline="")))
    assert sorted((r["email"], r["reason"], r["scope"], r["tenant"]) for r in rows) == [
        ("bounced@example.org", "hard_bounce", "global", "default"),
        ("shared@example.org", "hard_bounce", "global", "*"),
    ]


def test_the_command_writes_to_stdout_and_refuses_unknown_names(listed):
    proc = run_manage(
        "export_suppressions",
        "--stream",
        "marketing",
        env=same_database_env(ADDRESS_HASH_KEY=settings.ADDRESS_HASH_KEY),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert lines[0].startswith("# suppression-hashes/1 cursor=")
    assert len(lines) == 6
    assert b"5 hashes to stdout" in proc.stderr
    with pytest.raises(CommandError, match="unknown stream 'nosuch' of tenant 'default'"):
        call_command("export_suppressions", "--stream", "nosuch")
    with pytest.raises(CommandError, match="unknown tenant 'nosuch'"):
        call_command("export_suppressions", "--tenant", "nosuch")


def test_a_failed_export_leaves_the_previous_file(tmp_path, listed):
    out = tmp_path / "export.txt"
    out.write_text("the previous export\n")
    with pytest.raises(CommandError):
        call_command("export_suppressions", "--stream", "nosuch", "--output", str(out))
    assert out.read_text() == "the previous export\n"
    assert list(tmp_path.iterdir()) == [out]
