"""Batches read each partition of the list directly, routed as PostgreSQL routes rows
(suppression/partition_routes.py): every route must be PostgreSQL's own, or a check would miss
an entry."""

from __future__ import annotations

import hashlib
import logging

import pytest
from django.conf import settings
from django.db import connection

from suppression import partition_routes, partitioning, rules, sql

TABLE = partitioning.TABLE


@pytest.fixture(autouse=True)
def fresh_layouts():
    """Each test reads the list's layout afresh, as a new process would."""
    sql._layouts.clear()
    yield
    sql._layouts.clear()


def query(text: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(text, params)
        return cursor.fetchall()


def listed(suppress, count: int) -> list[bytes]:
    return [
        bytes(suppress(f"listed{i}@example.com", "unsubscribe", scope="commercial").address_hash)
        for i in range(count)
    ]


def unlisted(count: int) -> list[bytes]:
    return [hashlib.sha256(b"unlisted %d" % i).digest() for i in range(count)]


def found(hashes: list[bytes]) -> set[bytes]:
    keys = rules.BlockingKeys(
        any_reason=tuple({key for (key,) in query("SELECT DISTINCT scope_key FROM " + TABLE)}),
        never_mail_only=(),
        never_mail=(),
    )
    return {row.address_hash for row in sql.blocking_rows(hashes, keys)}


def routed_modulus() -> int | None:
    layout = sql._layouts[connection.alias][1]
    return layout.modulus if layout else None


@pytest.mark.parametrize("modulus", [1, 2, 3, 7, 16, 64, 1024])
def test_every_route_is_the_one_postgresql_takes(postgresql, modulus):
    hashes = [hashlib.sha256(b"%d-%d" % (modulus, i)).digest() for i in range(500)]
    routes = [int(r) for r in partition_routes.remainders(b"".join(hashes), modulus)]
    [(agrees,)] = query(
        "SELECT bool_and(satisfies_hash_partition(%s::regclass, %s, r, h)) "
        "FROM unnest(%s::int[], %s::bytea[]) AS x(r, h)",
        [TABLE, modulus, routes, hashes],
    )
    assert agrees is True
    assert set(routes) <= set(range(modulus))


def test_every_entry_lies_in_the_partition_its_hash_routes_to(postgresql, suppress):
    hashes = listed(suppress, 200)
    where = dict(
        (bytes(h), table)
        for h, table in query(f"SELECT address_hash, tableoid::regclass::text FROM {TABLE}")
    )
    layout = partition_routes.read_layout(connection.cursor().cursor, query(sql.LIST_OID)[0][0])
    assert layout is not None and layout.modulus == settings.SUPPRESSION_PARTITIONS
    routes = partition_routes.remainders(b"".join(hashes), layout.modulus)
    assert [where[h] for h in hashes] == [layout.partitions[r] for r in routes]


def test_a_batch_finds_every_listed_hash_and_nothing_else(postgresql, suppress):
    hashes = listed(suppress, 120)
    batch = hashes + unlisted(120)
    assert found(batch) == set(hashes)
    assert routed_modulus() == settings.SUPPRESSION_PARTITIONS
    # One hash (the policy server's batch of one) reads one partition.
    assert found([hashes[7]]) == {hashes[7]}
    assert found(unlisted(1)) == set()


def test_runs_per_partition_keep_every_hash_once_and_sorted():
    hashes = sorted(unlisted(1000))
    runs = partition_routes.split(b"".join(hashes), 16)
    pieces = [run[i : i + 32] for run in runs.values() for i in range(0, len(run), 32)]
    assert sorted(pieces) == hashes
    for run in runs.values():
        assert [run[i : i + 32] for i in range(0, len(run), 32)] == sorted(
            run[i : i + 32] for i in range(0, len(run), 32)
        )
    assert set(runs) == set(range(16))
    assert partition_routes.split(b"".join(hashes[:1]), 16).keys() == {
        int(partition_routes.remainders(hashes[0], 16)[0])
    }


@pytest.mark.parametrize("modulus", [1, 5, 16, 64])
def test_hashes_in_any_order_group_as_when_sorted_first(modulus):
    hashes = unlisted(500)
    batch = b"".join(hashes + hashes[:50] + list(reversed(hashes)))  # repeats, out of order
    assert partition_routes.group(batch, modulus) == partition_routes.group(
        b"".join(sorted(hashes)), modulus
    )
    grouped, runs = partition_routes.group(batch, modulus)
    assert sorted(partition_routes.cut(grouped)) == sorted(hashes), "each once"
    for remainder, (first, last) in runs.items():
        run = partition_routes.cut(grouped[first * 32 : (last + 1) * 32])
        assert run == sorted(run)
        assert set(partition_routes.remainders(b"".join(run), modulus)) == {remainder}


def test_hashes_alike_in_their_leading_bytes_still_group_sorted_and_once():
    # Two hashes of one partition that share their first 8 bytes: the grouping cannot tell
    # them apart by those and sorts them whole.
    same_start = [b"\x42" * 8 + hashlib.sha256(b"tail %d" % i).digest()[:24] for i in range(64)]
    by_partition: dict[int, list[bytes]] = {}
    for digest in same_start:
        by_partition.setdefault(int(partition_routes.remainders(digest, 16)[0]), []).append(digest)
    alike = next(group for group in by_partition.values() if len(group) >= 3)
    batch = alike + unlisted(100) + alike
    grouped, runs = partition_routes.group(b"".join(batch), 16)
    assert sorted(partition_routes.cut(grouped)) == sorted(set(batch))
    for first, last in runs.values():
        run = partition_routes.cut(grouped[first * 32 : (last + 1) * 32])
        assert run == sorted(run)


def test_a_batch_after_a_rebuild_with_other_partitions_still_finds_every_entry(
    rebuilt_back, suppress
):
    hashes = listed(suppress, 80)
    batch = hashes + unlisted(80)
    assert found(batch) == set(hashes)
    assert routed_modulus() == settings.SUPPRESSION_PARTITIONS

    # The partitions keep their names (_p0, _p1, ...) across a rebuild: a process that routed
    # by the old layout must notice the new table and route by its partitions.
    partitioning.rebuild(connection, partitions=5)
    assert found(batch) == set(hashes)
    assert routed_modulus() == 5

    partitioning.rebuild(connection, partitions=None)
    assert found(batch) == set(hashes)
    assert routed_modulus() is None


def test_a_batch_over_more_partitions_than_are_routed_reads_the_whole_table(rebuilt_back, suppress):
    partitioning.rebuild(connection, partitions=partition_routes.MAX_ROUTED_PARTITIONS * 2)
    hashes = listed(suppress, 400)
    runs = partition_routes.split(
        b"".join(sorted(hashes)), partition_routes.MAX_ROUTED_PARTITIONS * 2
    )
    assert len(runs) > partition_routes.MAX_ROUTED_PARTITIONS
    assert found(hashes + unlisted(100)) == set(hashes)


def test_a_layout_the_server_does_not_confirm_is_not_used(
    postgresql, suppress, monkeypatch, caplog
):
    hashes = listed(suppress, 60)
    # As if the server hashed otherwise (another byte order, another PostgreSQL).
    monkeypatch.setattr(partition_routes, "HASH_PARTITION_SEED", 1)
    with caplog.at_level(logging.WARNING, logger="suppression.partition_routes"):
        assert found(hashes + unlisted(60)) == set(hashes)
    assert routed_modulus() is None
    assert "routes hashes to partitions other than expected" in caplog.text


def test_hashes_sort_byte_by_byte_whatever_bytes_they_hold():
    # Zero bytes at the end or inside a hash are bytes like any other: none is lost or moved.
    hashes = [b"\x01" + b"\0" * 31, b"\0" * 32, b"\x01" * 31 + b"\0", b"\0" * 31 + b"\x01"]
    hashes += unlisted(200)
    assert partition_routes.sort(b"".join(hashes)) == b"".join(sorted(hashes))
    assert partition_routes.sort(b"".join(hashes * 2)) == b"".join(sorted(hashes)), "each once"
    assert partition_routes.cut(b"".join(hashes)) == hashes


def test_a_lookup_names_its_parameters_as_postgresql_numbers_them():
    numbered, names = sql.numbered_placeholders(
        "SELECT %(a)s, %(b)b, %(a)s, '100%%' WHERE x = %(c)s"
    )
    assert numbered == b"SELECT $1, $2, $1, '100%' WHERE x = $3"
    assert names == ("a", "b", "c")
