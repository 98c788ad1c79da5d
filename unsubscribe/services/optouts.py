"""Opting out: recording a recipient's opt-out, applying it, and the spool that keeps it while
the database is unreachable.

Every opt-out writes an `UnsubscribeRequest` (the evidence: channel, time, IP, user agent) and
suppresses through `suppression.services`, which also writes the `OptOutRequest` the deadline
tracking counts from. On PostgreSQL requests are applied in batches (`suppress_opt_outs`, a
batch of one for an opt-out applied at once); on SQLite one by one (`suppress`). Functions raise
`compliance.errors.ServiceError` for refused requests.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import hashlib
import logging
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Case, CharField, Value, When
from django.utils import timezone

from compliance import prepared
from compliance.errors import ServiceError
from compliance.models import Stream, Topic
from compliance.selectors import stream_by_id, topic_by_id
from suppression import addresses, rules
from suppression import services as suppression_services
from suppression.models import Origin
from suppression.scopes import Target
from unsubscribe import spool
from unsubscribe.links import Recipient
from unsubscribe.models import UnsubscribeRequest
from unsubscribe.tokens import Claims

log = logging.getLogger(__name__)

# The database is down or the connection broke: worth spooling. Anything else is a bug to surface.
UNREACHABLE = (OperationalError, InterfaceError)


def _now() -> datetime.datetime:
    return timezone.now()


@dataclass(frozen=True)
class Evidence:
    channel: str
    ip: str | None = None
    user_agent: str = ""
    token_key_id: int | None = None
    received_at: datetime.datetime | None = None
    capture_id: str | None = None
    # Set when replaying a spooled capture: the key computed when the click arrived.
    repeat_key: bytes | None = None


Breadth = UnsubscribeRequest.Breadth


def _window_of(moment: datetime.datetime) -> int | None:
    seconds = settings.UNSUBSCRIBE_REPEAT_WINDOW_SECONDS
    return int(moment.timestamp()) // seconds if seconds > 0 else None


def _repeat_key(
    *,
    tenant_id: int,
    stream_id: int,
    topic_id: int | None,
    digest: bytes,
    breadth: str,
    window: int,
) -> bytes:
    named = f"{tenant_id}:{stream_id}:{topic_id or ''}:{breadth}:{window}:".encode()
    return hashlib.sha256(named + digest).digest()


def _digest_of(claims: Claims) -> bytes:
    return addresses.address_hash(claims.recipient, settings.ADDRESS_HASH_KEY.encode())


def repeat_key(
    *, claims: Claims, breadth: str, at: datetime.datetime, digest: bytes | None = None
) -> bytes | None:
    """The same opt-out within one repeat window has the same key (None: no window set).
    `digest` is the recipient's address hash when the caller has it already."""
    window = _window_of(at)
    if window is None:
        return None
    return _repeat_key(
        tenant_id=claims.tenant_id,
        stream_id=claims.stream_id,
        topic_id=claims.topic_id,
        digest=digest if digest is not None else _digest_of(claims),
        breadth=breadth,
        window=window,
    )


def record_opt_out(
    *,
    claims: Claims,
    evidence: Evidence,
    breadth: str = Breadth.LINK,
    apply_now: bool | None = None,
) -> UnsubscribeRequest | None:
    """Record an opt-out durably: one row, committed before the caller answers. Returns None
    for a repeat: the same opt-out was already recorded within the repeat window (or this
    spooled capture was already replayed), and nothing more is stored.

    It is applied (suppressed, with its opt-out record) in the same transaction when
    `apply_now` (default: `UNSUBSCRIBE_APPLY_INLINE`, on without a broker); otherwise a worker's
    sweep applies pending requests every few seconds, in batches, so a burst of one-clicks costs
    the web tier one INSERT each and no broker call; checks see a pending request meanwhile (its
    `scope_key`, suppression/sql.py). Raises ServiceError when the link's stream or topic
    no longer exists, DatabaseError when the database cannot take it.
    """
    if apply_now is None:
        apply_now = settings.UNSUBSCRIBE_APPLY_INLINE
    if not _names_a_list(claims):
        raise ServiceError("the link's list no longer exists", code="link_gone")
    received_at = evidence.received_at or _now()
    # The address hash is worked out once: the row and its repeat key both need it.
    digest = _digest_of(claims)
    key = evidence.repeat_key
    if key is None and evidence.capture_id is None:  # a replay without one is an older file's
        key = repeat_key(claims=claims, breadth=breadth, at=received_at, digest=digest)
    request = UnsubscribeRequest(
        received_at=received_at,
        channel=evidence.channel,
        tenant_id=claims.tenant_id,
        stream_id=claims.stream_id,
        topic_id=claims.topic_id,
        breadth=breadth,
        campaign=claims.campaign or "",
        address=claims.recipient,
        address_hash=digest,
        ip=evidence.ip or None,  # an empty address is no address (inet takes none)
        user_agent=evidence.user_agent[:500],
        token_key_id=evidence.token_key_id,
        capture_id=evidence.capture_id,
        repeat_key=key,
        scope_key=_scope_key_of(claims, breadth),
    )
    # A lone INSERT commits on its own; a transaction (two more round trips) is needed only to
    # apply it with it.
    try:
        with transaction.atomic() if apply_now else nullcontext():
            if not _insert_once(request):
                return None
            if apply_now:
                apply_opt_out(request)
    except IntegrityError as exc:  # the stream or topic the token names is gone
        raise ServiceError("the link's list no longer exists", code="link_gone") from exc
    return request


def _insert_once(request: UnsubscribeRequest) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id, in one round trip: False (and nothing
    stored) when the repeat key or capture id is already there."""
    sql, fields = _insert_statement()
    if connection.vendor == "postgresql":
        # Prepared once per connection, with the values as they are: the server binds them, so
        # no field needs Django's conversion for the database. It is the request's connection
        # check too. Should a connection break after the server committed the row, the second
        # run inserts nothing (its repeat key or capture id conflicts); with the repeat window
        # off it could store the request twice, as two clicks would be with the window off.
        row = prepared.fetch_one(sql, [getattr(request, f.attname) for f in fields])
    else:
        params = [f.get_db_prep_save(f.pre_save(request, True), connection) for f in fields]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
    if row is None:
        return False
    request.pk = row[0]
    request._state.adding = False
    request._state.db = connection.alias
    return True


@functools.cache
def _insert_statement() -> tuple[str, list]:
    meta = UnsubscribeRequest._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT DO NOTHING RETURNING {quote(meta.pk.column)}"
    )
    return sql, fields


def retire_repeat_keys(*, tenant_id: int | None, digest: bytes) -> int:
    """Let the recipient's next opt-out be stored even within the repeat window: their opt-out
    was lifted (a resubscription), so a new click is a new opt-out, never a repeat. Only keys
    of this window and the last can still match, so they are computed, not searched for."""
    now = _window_of(_now())
    if now is None:
        return 0
    streams = (
        Stream.objects.all() if tenant_id is None else Stream.objects.filter(tenant_id=tenant_id)
    )
    targets = [(tenant, stream, None) for stream, tenant in streams.values_list("pk", "tenant_id")]
    targets += Topic.objects.filter(stream__in=streams).values_list(
        "stream__tenant_id", "stream_id", "pk"
    )
    keys = [
        _repeat_key(
            tenant_id=tenant,
            stream_id=stream,
            topic_id=topic,
            digest=digest,
            breadth=breadth,
            window=w,
        )
        for tenant, stream, topic in targets
        for breadth in Breadth.values
        for w in (now - 1, now)
    ]
    return UnsubscribeRequest.objects.filter(repeat_key__in=keys).update(repeat_key=None)


def _names_a_list(claims: Claims) -> bool:
    """Do the token's stream (and topic) still exist? Answered from the per-process cache."""
    stream = stream_by_id(claims.stream_id)
    if stream is None or stream.tenant_id != claims.tenant_id:
        return False
    if claims.topic_id is None:
        return True
    topic = topic_by_id(claims.topic_id)
    return topic is not None and topic.stream_id == stream.pk


def _target_of(request: UnsubscribeRequest) -> Target:
    if request.breadth == Breadth.COMMERCIAL:
        return Target(tenant=request.tenant, scope=rules.COMMERCIAL)
    if request.topic_id is not None:
        return Target(
            tenant=request.tenant, scope=rules.TOPIC, stream=request.stream, topic=request.topic
        )
    return Target(tenant=request.tenant, scope=rules.STREAM, stream=request.stream)


def _scope_key_of(claims: Claims, breadth: str) -> str:
    """The key of the entry the opt-out becomes (what `_target_of` will name), stored with the
    request so checks see it while it is pending."""
    if breadth == Breadth.COMMERCIAL:
        return rules.scope_key(claims.tenant_id, rules.COMMERCIAL)
    if claims.topic_id is not None:
        return rules.scope_key(claims.tenant_id, rules.TOPIC, claims.topic_id)
    return rules.scope_key(claims.tenant_id, rules.STREAM, claims.stream_id)


LIST_GONE = "(the list no longer exists)"

# How many pending requests one transaction applies: big enough that the statements' own cost
# is spread thin, small enough that a batch holds its locks briefly.
BATCH_SIZE = 1000


def apply_opt_out(request: UnsubscribeRequest) -> UnsubscribeRequest:
    """Suppress what a recorded request asks for; applying it twice changes nothing. On
    PostgreSQL it is a batch of one, through the statements the worker's sweep runs, so the two
    cannot drift apart; SQLite (the embedded default) goes one row at a time."""
    if connection.vendor != "postgresql":
        return _apply_one(request)
    with transaction.atomic():
        _apply_batch(_claimed(UnsubscribeRequest.objects.filter(pk=request.pk), skip_locked=False))
    request.refresh_from_db(fields=["applied_at", "scope_label"])
    return request


def apply_pending_opt_outs(*, limit: int = 20_000, batch_size: int = BATCH_SIZE) -> int:
    """Apply recorded opt-outs not yet applied, oldest first, `batch_size` per transaction;
    return how many were applied (at most about `limit`). Workers running side by side take
    different requests: a batch skips the rows another one holds."""
    if connection.vendor != "postgresql":
        pending = UnsubscribeRequest.objects.filter(applied_at__isnull=True)
        count = 0
        for request in pending.order_by("received_at", "pk")[:limit]:
            _apply_one(request)
            count += 1
        return count
    applied = 0
    while applied < limit:
        size = min(batch_size, limit - applied)
        with transaction.atomic():
            claimed = _claimed(UnsubscribeRequest.objects.all(), skip_locked=True, oldest=size)
            _apply_batch(claimed)
        applied += len(claimed)
        if len(claimed) < size:
            break
    return applied


_CLAIMED_FIELDS = (
    "pk",
    "received_at",
    "channel",
    "tenant_id",
    "stream_id",
    "topic_id",
    "breadth",
    "address",
    "address_hash",
    "ip",
)


class _Claimed(NamedTuple):
    pk: int
    received_at: datetime.datetime
    channel: str
    tenant_id: int
    stream_id: int
    topic_id: int | None
    breadth: str
    address: str | None
    address_hash: bytes
    ip: str | None


def _claimed(requests, *, skip_locked: bool, oldest: int | None = None) -> list[_Claimed]:
    """The pending requests among `requests` (the `oldest` so many, if given), locked for this
    transaction; with `skip_locked`, those another transaction holds are left to it."""
    rows = requests.filter(applied_at__isnull=True).select_for_update(skip_locked=skip_locked)
    if oldest is not None:
        rows = rows.order_by("received_at", "pk")[:oldest]
    return [_Claimed(*row) for row in rows.values_list(*_CLAIMED_FIELDS)]


_CHANNELS = dict(UnsubscribeRequest.Channel.choices)


def _apply_batch(claimed: list[_Claimed]) -> None:
    """Apply claimed requests through suppression.services.suppress_opt_outs (one statement for
    their entries, history and opt-out records, and one for each layer above), then mark them
    applied. A request whose stream or topic was deleted since the click is marked applied with
    nothing to stop."""
    if not claimed:
        return
    streams = Stream.objects.select_related("tenant").in_bulk({c.stream_id for c in claimed})
    topic_ids = {c.topic_id for c in claimed if c.topic_id is not None}
    topics = Topic.objects.select_related("stream").in_bulk(topic_ids) if topic_ids else {}
    targets: dict[tuple, Target | None] = {}
    opt_outs, labels = [], {}
    for c in claimed:
        key = (c.tenant_id, c.stream_id, c.topic_id, c.breadth)
        if key not in targets:
            targets[key] = _target_for(c, streams, topics)
        target = targets[key]
        if target is None:
            labels[c.pk] = LIST_GONE
            continue
        labels[c.pk] = target.label
        opt_outs.append(
            suppression_services.OptOut(
                target=target,
                address=c.address,
                address_hash=bytes(c.address_hash),
                received_at=c.received_at,
                channel=c.channel,
                evidence_id=str(c.pk),
                evidence_note=f"{_CHANNELS.get(c.channel, c.channel)} from {c.ip or 'unknown'}",
            )
        )
    suppression_services.suppress_opt_outs(
        opt_outs,
        reason=rules.UNSUBSCRIBE,
        origin=Origin.RECIPIENT,
        evidence_type=ContentType.objects.get_for_model(UnsubscribeRequest),
    )
    by_label: dict[str, list[int]] = {}
    for pk, label in labels.items():
        by_label.setdefault(label, []).append(pk)
    UnsubscribeRequest.objects.filter(pk__in=list(labels)).update(
        applied_at=_now(),
        scope_label=Case(
            *(When(pk__in=pks, then=Value(label)) for label, pks in by_label.items()),
            output_field=CharField(),
        ),
    )


def _target_for(c: _Claimed, streams: dict, topics: dict) -> Target | None:
    """What the request opts out of, or None when its stream or topic no longer exists."""
    stream = streams.get(c.stream_id)
    if stream is None or stream.tenant_id != c.tenant_id:
        return None
    if c.breadth == Breadth.COMMERCIAL:
        return Target(tenant=stream.tenant, scope=rules.COMMERCIAL)
    if c.topic_id is None:
        return Target(tenant=stream.tenant, scope=rules.STREAM, stream=stream)
    topic = topics.get(c.topic_id)
    if topic is None:
        return None
    return Target(tenant=stream.tenant, scope=rules.TOPIC, stream=stream, topic=topic)


def _apply_one(request: UnsubscribeRequest) -> UnsubscribeRequest:
    """One request through suppression.services.suppress (SQLite's path)."""
    with transaction.atomic():
        found = (
            UnsubscribeRequest.objects.select_for_update(of=("self",))
            .select_related("tenant", "stream", "topic__stream")
            .filter(pk=request.pk)
            .first()
        )
        if found is None or (found.topic_id is not None and found.topic is None):
            # Its stream or topic was deleted between the click and now: nothing left to stop.
            UnsubscribeRequest.objects.filter(pk=request.pk, applied_at__isnull=True).update(
                applied_at=_now(), scope_label=LIST_GONE
            )
            request.refresh_from_db()
            return request
        request = found
        if request.applied_at is not None:
            return request
        target = _target_of(request)
        suppression_services.suppress(
            target=target,
            address=request.address,
            reason=rules.UNSUBSCRIBE,
            origin=Origin.RECIPIENT,
            evidence=request,
            evidence_note=f"{request.get_channel_display()} from {request.ip or 'unknown'}",
            created_at=request.received_at,
            channel=request.channel,
        )
        request.applied_at = _now()
        request.scope_label = target.label
        request.save(update_fields=["applied_at", "scope_label"])
    return request


def unsubscribe(
    *, recipient: Recipient, evidence: Evidence, target: Target | None = None
) -> UnsubscribeRequest:
    """Opt out at once (the preference centre and mail): recorded and applied together."""
    breadth = Breadth.LINK
    if target is not None and target.scope == rules.COMMERCIAL:
        breadth = Breadth.COMMERCIAL
    claims = recipient.claims
    if target is not None and target.scope in (rules.STREAM, rules.TOPIC):
        claims = Claims(
            tenant_id=claims.tenant_id,
            recipient=claims.recipient,
            stream_id=target.stream.pk,
            topic_id=target.topic.pk if target.topic else None,
            campaign=claims.campaign,
            issued_at=claims.issued_at,
        )
    return record_opt_out(claims=claims, evidence=evidence, breadth=breadth, apply_now=True)


class Outcome(enum.Enum):
    RECORDED = "recorded"  # stored in the database now
    CAPTURED = "captured"  # stored in the local spool; the database takes it later
    REPEAT = "repeat"  # the same opt-out was already stored within the repeat window


def capture_opt_out(
    *, claims: Claims, evidence: Evidence, breadth: str = Breadth.LINK
) -> str | None:
    """Keep an opt-out on local disk while the database is unreachable; applied later by
    `drain_spool`. Returns the capture id, or None for a repeat already spooled."""
    received_at = evidence.received_at or _now()
    key = repeat_key(claims=claims, breadth=breadth, at=received_at)
    capture_id, created = spool.write(
        settings.UNSUBSCRIBE_SPOOL_DIR,
        {
            "claims": {
                "tenant_id": claims.tenant_id,
                "recipient": claims.recipient,
                "stream_id": claims.stream_id,
                "topic_id": claims.topic_id,
                "campaign": claims.campaign,
                "issued_at": claims.issued_at,
            },
            "channel": evidence.channel,
            "ip": evidence.ip,
            "user_agent": evidence.user_agent[:500],
            "token_key_id": evidence.token_key_id,
            "received_at": received_at.isoformat(),
            "breadth": breadth,
            "repeat_key": key.hex() if key else None,
        },
        name=key.hex() if key else None,
    )
    if not created:
        return None
    log.warning("database unavailable: opt-out captured to the spool as %s", capture_id)
    return capture_id


def record_or_capture(
    *, claims: Claims, evidence: Evidence, breadth: str = Breadth.LINK
) -> Outcome:
    """Record the opt-out in the database, or on local disk if the database is down. Either way
    it is durable when this returns. Raises ServiceError when the link's list no longer exists.
    """
    evidence = dataclasses.replace(evidence, received_at=evidence.received_at or _now())
    try:
        request = record_opt_out(claims=claims, evidence=evidence, breadth=breadth)
    except UNREACHABLE as exc:
        log.warning("cannot record an opt-out in the database: %s", exc)
        captured = capture_opt_out(claims=claims, evidence=evidence, breadth=breadth)
        return Outcome.CAPTURED if captured else Outcome.REPEAT
    background_drain.poke()
    return Outcome.RECORDED if request is not None else Outcome.REPEAT


def drain_spool(*, wait: bool = False) -> int:
    """Record every spooled opt-out the database will now take; return how many. Stops at the
    first database error, leaving the rest for the next run. One drainer at a time across
    processes: without `wait`, returns 0 at once while another one drains."""
    directory = settings.UNSUBSCRIBE_SPOOL_DIR
    applied = 0
    with spool.drain_lock(directory, wait=wait) as locked:
        if not locked:
            return 0
        for path, entry in spool.pending(directory):
            key = entry.get("repeat_key")
            evidence = Evidence(
                channel=entry["channel"],
                ip=entry.get("ip"),
                user_agent=entry.get("user_agent", ""),
                token_key_id=entry.get("token_key_id"),
                received_at=datetime.datetime.fromisoformat(entry["received_at"]),
                capture_id=entry["capture_id"],
                repeat_key=bytes.fromhex(key) if key else None,
            )
            try:
                record_opt_out(
                    claims=Claims(**entry["claims"]),
                    evidence=evidence,
                    # Files spooled before the field was named breadth say "scope".
                    breadth=entry.get("breadth", entry.get("scope", Breadth.LINK)),
                )
            except ServiceError:
                log.warning("spooled opt-out %s names a list that no longer exists", path.name)
            except UNREACHABLE:
                log.warning("database still unavailable; %s stays in the spool", path.name)
                break
            spool.remove(path)
            applied += 1
    return applied


class BackgroundDrain:
    """Drains the spool in a thread of this process once the database takes requests again,
    so no request waits for it. The spool directory is looked at once per `every` seconds at
    most, not on every request."""

    def __init__(self, *, every: float = 1.0):
        self.every = every
        self._next_look = 0.0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def poke(self) -> None:
        now = time.monotonic()
        if now < self._next_look:
            return
        self._next_look = now + self.every
        if not spool.has_pending(settings.UNSUBSCRIBE_SPOOL_DIR):
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="spool-drain", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            drained = drain_spool()
            if drained:
                log.info("drained %d spooled opt-out(s)", drained)
        except Exception:  # a thread's error would otherwise vanish; the files stay for later
            log.exception("draining the unsubscribe spool failed")
        finally:
            connection.close()  # this thread's own connection

    def join(self, timeout: float | None = None) -> None:
        """Wait for a running drain (tests and shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def reset(self) -> None:
        self.join()
        self._next_look = 0.0


background_drain = BackgroundDrain()
