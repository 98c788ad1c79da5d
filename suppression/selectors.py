"""Reads of the suppression list: is this address suppressed, which of these are, what changed."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import compress
from typing import NamedTuple, TypedDict, TypeVar

import orjson
from django.conf import settings
from django.db.models import QuerySet

from compliance import after_response
from compliance.errors import ServiceError
from compliance.models import Stream, Topic
from suppression import addresses, given_hashes, rules, sql
from suppression.models import Suppression, SuppressionEvent, active_q
from suppression.scopes import label_for_key

MAX_BATCH = 100_000


class Verdict(NamedTuple):  # the single check's answer
    address: str
    suppressed: bool
    reason: str | None = None
    scope: str | None = None
    since: datetime.datetime | None = None


class Suppressed(TypedDict):
    """One suppressed address of a batch, as the batch check answers it. A dict, not an object
    with attributes: a batch has thousands, and orjson writes dicts about three times as fast
    as dataclasses."""

    address: str
    reason: str
    scope: str
    since: datetime.datetime


class SuppressedHash(TypedDict):
    """One suppressed hash of a batch asked by hashes (suppression/given_hashes.py)."""

    hash: str
    reason: str
    scope: str
    since: datetime.datetime


@dataclass(frozen=True)
class BatchVerdict:
    checked: int
    # The items as dicts, or as their JSON (orjson.Fragment) where written while the rows came.
    suppressed: list[Suppressed] | list[SuppressedHash] | list[orjson.Fragment] = field(
        default_factory=list
    )
    invalid: list[tuple[str, str]] = field(default_factory=list)


def _keys(stream: Stream, topic: Topic | None) -> rules.BlockingKeys:
    return rules.blocking_keys(
        tenant_id=stream.tenant_id,
        stream_id=stream.pk,
        commercial=stream.is_commercial,
        topic_id=topic.pk if topic else None,
    )


_Row = TypeVar("_Row", bound=sql.RawBlockingRow)


def _winners(rows: Iterable[_Row]) -> dict[bytes, _Row]:
    """The entry to report per hash: the widest blocking entry wins."""
    winners: dict[bytes, _Row] = {}
    for row in rows:
        best = winners.get(row[0])
        if best is None or _better(row, best):
            winners[row[0]] = row
    return winners


def _better(row: sql.RawBlockingRow, best: sql.RawBlockingRow) -> bool:
    """Does `row` report better than `best`: a wider scope, then a weightier reason?"""
    _, scope_key, reason, _ = row
    _, best_scope_key, best_reason, _ = best
    return rules.widest([(scope_key, reason), (best_scope_key, best_reason)]) == (
        scope_key,
        reason,
    ) and (scope_key, reason) != (best_scope_key, best_reason)


def is_suppressed(*, stream: Stream, address: str, topic: Topic | None = None) -> Verdict:
    """May mail of `stream` (and `topic`) go to `address`? Raises ServiceError if invalid."""
    try:
        normalised = addresses.normalise(address)
    except addresses.InvalidAddress as exc:
        raise ServiceError(
            f"invalid address {address!r}: {exc.reason}", code="invalid_address"
        ) from exc
    digest = addresses.address_hash(normalised, settings.ADDRESS_HASH_KEY.encode())
    row = _winners(sql.blocking_rows_for_one(digest, _keys(stream, topic))).get(digest)
    if row is None:
        return Verdict(address=address, suppressed=False)
    return Verdict(
        address=address,
        suppressed=True,
        reason=row.reason,
        scope=label_for_key(row.scope_key, stream=stream, topic=topic),
        since=row.created_at,
    )


# The entry that blocks one hash, as the batch check reports it: (reason, scope, since), the
# scope as the answer labels it. A plain tuple: a batch makes thousands, and a named tuple took
# several times as long to make.
Blocked = tuple[str, str, datetime.datetime]


# A batch is hashed in parts, and each part's lookup goes to the database as soon as the part is
# hashed (sql.blocking_rows_in_parts): PostgreSQL looks up one part while the next is hashed. The
# first part is small so that the database starts early; each part after it is twice the one
# before, up to LARGEST_PART, as every query is planned on its own. Of the schedules measured
# (bench/README.md, batch check), doubling left the database waiting least.
FIRST_PART = 800
LARGEST_PART = 4_500


class CheckedBatch(NamedTuple):
    """A batch normalised, hashed and looked up."""

    spellings: dict[bytes, list[str]]  # each hash: the given spellings with that hash
    invalid: list[tuple[str, str]]  # (address, reason) of the malformed ones
    blocked: dict[bytes, Blocked]  # the blocking entry of each blocked hash


def check_batch(
    *, stream: Stream, addresses_: list[str], topic: Topic | None = None
) -> CheckedBatch:
    """Normalise, hash and look up a batch of at most MAX_BATCH addresses for mail of `stream`
    (and `topic`): the batch check's and the send decisions' lookup. Raises ServiceError (413)
    for a larger batch."""
    _check_size(addresses_, "addresses")
    key = settings.ADDRESS_HASH_KEY.encode()
    spellings: dict[bytes, list[str]] = {}
    invalid: list[tuple[str, str]] = []

    def hashed_parts() -> Iterator[bytes]:
        for start, stop in _part_bounds(len(addresses_)):
            found, malformed = addresses.hash_many(addresses_[start:stop], key)
            invalid.extend(malformed)
            if spellings.keys().isdisjoint(found):
                spellings.update(found)
                yield b"".join(found)
                continue
            new = []  # an address repeated across parts is looked up once
            for digest, raws in found.items():
                if digest in spellings:
                    spellings[digest].extend(raws)
                else:
                    spellings[digest] = raws
                    new.append(digest)
            yield b"".join(new)

    rows = sql.blocking_rows_in_parts(hashed_parts(), _keys(stream, topic))
    return CheckedBatch(spellings, invalid, _blocked(rows, stream, topic))


def _check_size(batch: list[str], name: str) -> None:
    if len(batch) > MAX_BATCH:
        raise ServiceError(
            f"at most {MAX_BATCH} {name} per request, got {len(batch)}",
            code="batch_too_large",
            status=413,
        )


def _blocked(
    rows: Iterable[sql.RawBlockingRow], stream: Stream, topic: Topic | None
) -> dict[bytes, Blocked]:
    """The blocking entry of each hash among `rows`, its scope labelled as the answer names it."""
    labels: dict[str, str] = {}  # a batch has thousands of rows but a handful of scopes
    blocked: dict[bytes, Blocked] = {}
    for digest, (_, scope_key, reason, since) in _winners(rows).items():
        scope = labels.get(scope_key)
        if scope is None:
            scope = labels[scope_key] = label_for_key(scope_key, stream=stream, topic=topic)
        blocked[digest] = (reason, scope, since)
    return blocked


def _part_bounds(count: int) -> Iterator[tuple[int, int]]:
    start, size = 0, FIRST_PART
    while start < count:
        yield start, min(start + size, count)
        start, size = start + size, min(2 * size, LARGEST_PART)


def suppressed_among(
    *, stream: Stream, addresses_: list[str], topic: Topic | None = None
) -> BatchVerdict:
    """Which of `addresses_` may not get mail of `stream`; malformed ones are listed apart."""
    spellings, invalid, blocked = check_batch(stream=stream, topic=topic, addresses_=addresses_)
    suppressed: list[Suppressed] = [
        {"address": raw, "reason": reason, "scope": scope, "since": since}
        for digest, (reason, scope, since) in blocked.items()
        for raw in spellings[digest]
    ]
    return BatchVerdict(checked=len(addresses_), suppressed=suppressed, invalid=invalid)


def suppressed_hashes_among(
    *, stream: Stream, hashes_: list[str], topic: Topic | None = None
) -> BatchVerdict:
    """`suppressed_among` for a batch of keyed hashes in hex (suppression/given_hashes.py), which
    the service looks up as they are: one lookup, nothing to normalise or hash. The suppressed
    ones are answered under the spelling given, in the order given."""
    _check_size(hashes_, "hashes")
    parsed = given_hashes.parse(hashes_)
    answer = _HashAnswer(stream, topic, parsed.keys)
    sql.each_blocking_row(parsed.hashes, _keys(stream, topic), answer.add)
    return BatchVerdict(
        checked=len(hashes_), suppressed=answer.in_order(hashes_), invalid=parsed.invalid
    )


class _HashAnswer:
    """The suppressed hashes of a batch, built row by row while the lookup streams
    (sql.each_blocking_row): each hash's widest blocking entry, and its answer item already
    written as JSON. orjson copies such a fragment into the answer as it is, and writing the
    5,000 items of a 10,000-hash batch after the last row took 1.2 ms of the request; written
    as they arrive, they cost nothing the lookup's wait does not cover."""

    def __init__(self, stream: Stream, topic: Topic | None, keys: list[str]):
        self._stream, self._topic = stream, topic
        self._keys = keys  # the given hashes in lower case, in the order given
        # A slot for each distinct given hash, in the order given, for its item; made when the
        # first row arrives, while the database still works, so that the answer is then read
        # off in order instead of looking up 10,000 hashes after the last row.
        self._slots: dict[str, orjson.Fragment | None] | None = None
        self._best: dict[str, sql.RawBlockingRow] = {}  # by the hash in lower-case hex
        self._labels: dict[str, str] = {}  # a batch has thousands of rows but a few scopes

    def add(self, row: sql.RawBlockingRow) -> None:
        if self._slots is None:
            self._slots = dict.fromkeys(self._keys)
        digest, scope_key, reason, since = row
        key = digest.hex()
        best = self._best.get(key)
        if best is not None and not _better(row, best):
            return
        self._best[key] = row
        scope = self._labels.get(scope_key)
        if scope is None:
            scope = label_for_key(scope_key, stream=self._stream, topic=self._topic)
            self._labels[scope_key] = scope
        item: SuppressedHash = {"hash": key, "reason": reason, "scope": scope, "since": since}
        self._slots[key] = orjson.Fragment(orjson.dumps(item))

    def in_order(self, given: list[str]) -> list[orjson.Fragment] | list[SuppressedHash]:
        """The items of the given hashes that are suppressed, in the order given, each named
        as given."""
        slots = self._slots
        if slots is None:  # no row: none is suppressed
            return []
        after_response.hold(self._best, slots)  # tens of thousands of objects
        if self._keys is given:  # all given in lower case, as the items name them
            if len(slots) == len(given):  # and none twice: the slots are the answer's order
                return list(filter(None, slots.values()))
            return list(filter(None, map(slots.get, given)))
        rows = list(map(self._best.get, self._keys))
        return [
            {"hash": spelling, "reason": reason, "scope": self._labels[scope_key], "since": since}
            for spelling, (_, scope_key, reason, since) in zip(
                compress(given, rows), filter(None, rows), strict=True
            )
        ]


def suppressions_visible_to(tenant_ids: list[int] | None) -> QuerySet[Suppression]:
    """Entries of these tenants plus shared ones (every entry when `tenant_ids` is None)."""
    rows = Suppression.objects.select_related("tenant", "stream", "topic__stream")
    if tenant_ids is None:
        return rows
    from django.db.models import Q

    return rows.filter(Q(tenant__isnull=True) | Q(tenant_id__in=tenant_ids))


def suppressions_of(tenant_ids: list[int]) -> QuerySet[Suppression]:
    """Entries of these tenants only, without the shared ones."""
    return Suppression.objects.select_related("tenant", "stream", "topic__stream").filter(
        tenant_id__in=tenant_ids
    )


def filter_suppressions(
    rows: QuerySet[Suppression],
    *,
    reason=None,
    scope=None,
    origin=None,
    tenant=None,
    created_after=None,
    created_before=None,
    address=None,
    active=None,
) -> QuerySet[Suppression]:
    """Apply the list filters; `address` is normalised and matched by its hash."""
    if reason:
        rows = rows.filter(reason=reason)
    if scope:
        rows = rows.filter(scope=scope)
    if origin:
        rows = rows.filter(origin=origin)
    if tenant:
        rows = (
            rows.filter(tenant__isnull=True) if tenant == "*" else rows.filter(tenant__slug=tenant)
        )
    if created_after:
        rows = rows.filter(created_at__gte=created_after)
    if created_before:
        rows = rows.filter(created_at__lt=created_before)
    if address:
        from suppression.services import normalise_and_hash

        rows = rows.filter(address_hash=normalise_and_hash(address)[1])
    if active is True:
        rows = rows.filter(active_q())
    elif active is False:
        rows = rows.exclude(active_q())
    return rows


@dataclass(frozen=True)
class Cursor:
    txid: int
    event_id: int

    def __str__(self) -> str:
        return f"{self.txid}.{self.event_id}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        if not text:
            return cls(0, 0)
        try:
            txid, event_id = (int(part) for part in text.split("."))
        except ValueError:
            raise ServiceError(f"malformed cursor {text!r}", code="bad_cursor") from None
        if txid < 0 or event_id < 0:
            raise ServiceError(f"malformed cursor {text!r}", code="bad_cursor")
        return cls(txid, event_id)


def changes_since(
    cursor: Cursor, *, limit: int, tenant_ids: list[int] | None
) -> tuple[list[SuppressionEvent], Cursor]:
    """The next change-feed events after `cursor`, and the cursor to ask with next time."""
    ids = sql.feed_event_ids(
        txid=cursor.txid, event_id=cursor.event_id, limit=limit, tenant_ids=tenant_ids
    )
    events = SuppressionEvent.objects.in_bulk(ids)
    ordered = [events[i] for i in ids]
    rows = Suppression.objects.select_related("tenant", "stream", "topic__stream").in_bulk(
        {e.suppression_id for e in ordered}
    )
    for event in ordered:
        event.current = rows[event.suppression_id]
    if not ordered:
        return [], cursor
    last = ordered[-1]
    return ordered, Cursor(last.txid, last.id)
