"""Recipients' opt-outs and preferences, and the links that lead to them.

Every opt-out writes an `UnsubscribeRequest` (the evidence: channel, time, IP, user agent) and
suppresses through `suppression.services`, which also writes the `OptOutRequest` the deadline
tracking counts from. Functions raise `compliance.errors.ServiceError` for refused requests.
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

from django.conf import settings
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.utils import timezone

from compliance.errors import ServiceError
from compliance.models import ConsentEvent, Stream, Tenant, Topic
from compliance.selectors import stream_by_id, topic_by_id
from suppression import addresses, rules
from suppression import services as suppression_services
from suppression.models import Origin
from suppression.scopes import Target
from unsubscribe import spool
from unsubscribe.models import UnsubscribeRequest
from unsubscribe.tokens import Claims, TokenCodec, derive_key, parse_keys

log = logging.getLogger(__name__)

ONE_CLICK_POST = "List-Unsubscribe=One-Click"
# The database is down or the connection broke: worth spooling. Anything else is a bug to surface.
UNREACHABLE = (OperationalError, InterfaceError)


def _now() -> datetime.datetime:
    return timezone.now()


@functools.cache
def _codec_for(keys: str, max_age_days: int) -> TokenCodec:
    # Malformed keys and a maximum age under 30 days are refused at start (compliance.checks).
    by_id, current = parse_keys(keys)
    return TokenCodec(
        {kid: derive_key(secret) for kid, secret in by_id.items()},
        current=current,
        max_age=max_age_days * 86400 or None,
    )


def codec() -> TokenCodec:
    return _codec_for(settings.UNSUBSCRIBE_TOKEN_KEYS, settings.UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS)


# --- minting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MintedLink:
    recipient: str
    url: str
    mailto: str | None

    @property
    def list_unsubscribe(self) -> str:
        # RFC 8058 section 3.1: exactly one HTTPS URI, optionally with a mailto.
        value = f"<{self.url}>"
        return f"{value}, <mailto:{self.mailto}>" if self.mailto else value

    @property
    def list_unsubscribe_post(self) -> str:
        return ONE_CLICK_POST


def mint_link(
    *, stream: Stream, recipient: str, topic: Topic | None = None, campaign: str | None = None
) -> MintedLink:
    """List-Unsubscribe values for one message. Raises ServiceError for an invalid recipient,
    a transactional stream (exempt from the opt-out duty) or an over-long campaign id."""
    if not stream.is_commercial:
        raise ServiceError(
            f"stream {stream.slug!r} is transactional: its mail carries no unsubscribe link",
            code="transactional_stream",
        )
    try:
        normalised = addresses.normalise(recipient)
    except addresses.InvalidAddress as exc:
        raise ServiceError(
            f"invalid recipient {recipient!r}: {exc.reason}", code="invalid_address"
        ) from exc
    if campaign and len(campaign.encode()) > 255:
        raise ServiceError("campaign is at most 255 bytes", code="invalid")
    token = codec().mint(
        Claims(
            tenant_id=stream.tenant_id,
            recipient=normalised,
            stream_id=stream.pk,
            topic_id=topic.pk if topic else None,
            campaign=campaign or None,
        )
    )
    mailto = None
    if settings.UNSUBSCRIBE_MAILTO_DOMAIN:
        mailto = f"unsubscribe+{token}@{settings.UNSUBSCRIBE_MAILTO_DOMAIN}"
    return MintedLink(
        recipient=normalised, url=f"{settings.UNSUBSCRIBE_BASE_URL}/u/{token}", mailto=mailto
    )


# --- reading a token -------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """A valid token's claims with the rows they name."""

    claims: Claims
    tenant: Tenant
    stream: Stream
    topic: Topic | None

    @property
    def link_target(self) -> Target:
        """What the link in the message opts out of: its topic, else its stream."""
        if self.topic is not None:
            return Target(
                tenant=self.tenant, scope=rules.TOPIC, stream=self.stream, topic=self.topic
            )
        return Target(tenant=self.tenant, scope=rules.STREAM, stream=self.stream)

    @property
    def all_commercial(self) -> Target:
        return Target(tenant=self.tenant, scope=rules.COMMERCIAL)


def read_claims(token: str) -> Claims | None:
    return codec().read(token)


def names_for(claims: Claims) -> dict:
    """Sender and stream names for the pages, from the per-process cache; empty if unknown
    (the database may be down: the opt-out is captured all the same)."""
    try:
        stream = stream_by_id(claims.stream_id)
    except DatabaseError:
        return {}
    if stream is None:
        return {}
    return {"stream": stream.name, "sender": stream.tenant.name}


def recipient_for(claims: Claims) -> Recipient | None:
    """The rows a token names, or None when they no longer exist (needs the database)."""
    stream = (
        Stream.objects.select_related("tenant")
        .filter(pk=claims.stream_id, tenant_id=claims.tenant_id)
        .first()
    )
    if stream is None:
        return None
    topic = None
    if claims.topic_id is not None:
        topic = Topic.objects.filter(pk=claims.topic_id, stream=stream).first()
        if topic is None:
            return None
    return Recipient(claims=claims, tenant=stream.tenant, stream=stream, topic=topic)


# --- opting out ------------------------------------------------------------------------------


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


Scope = UnsubscribeRequest.Scope


def _window_of(moment: datetime.datetime) -> int | None:
    seconds = settings.UNSUBSCRIBE_REPEAT_WINDOW_SECONDS
    return int(moment.timestamp()) // seconds if seconds > 0 else None


def _repeat_key(
    *, tenant_id: int, stream_id: int, topic_id: int | None, digest: bytes, scope: str, window: int
) -> bytes:
    named = f"{tenant_id}:{stream_id}:{topic_id or ''}:{scope}:{window}:".encode()
    return hashlib.sha256(named + digest).digest()


def repeat_key(*, claims: Claims, scope: str, at: datetime.datetime) -> bytes | None:
    """The same opt-out within one repeat window has the same key (None: no window set)."""
    window = _window_of(at)
    if window is None:
        return None
    return _repeat_key(
        tenant_id=claims.tenant_id,
        stream_id=claims.stream_id,
        topic_id=claims.topic_id,
        digest=addresses.address_hash(claims.recipient, settings.ADDRESS_HASH_KEY.encode()),
        scope=scope,
        window=window,
    )


def record(
    *, claims: Claims, evidence: Evidence, scope: str = Scope.LINK, apply_now: bool | None = None
) -> UnsubscribeRequest | None:
    """Record an opt-out durably: one row, committed before the caller answers. Returns None
    for a repeat: the same opt-out was already recorded within the repeat window (or this
    spooled capture was already replayed), and nothing more is stored.

    It is applied (suppressed, with its opt-out record) in the same transaction when
    `apply_now` (default: `UNSUBSCRIBE_APPLY_INLINE`, on without a broker); otherwise a worker's
    sweep applies pending requests every few seconds, so a burst of one-clicks costs the web
    tier one INSERT each and no broker call. Raises ServiceError when the link's stream or topic
    no longer exists, DatabaseError when the database cannot take it.
    """
    if apply_now is None:
        apply_now = settings.UNSUBSCRIBE_APPLY_INLINE
    if not _names_a_list(claims):
        raise ServiceError("the link's list no longer exists", code="link_gone")
    received_at = evidence.received_at or _now()
    key = evidence.repeat_key
    if key is None and evidence.capture_id is None:  # a replay without one is an older file's
        key = repeat_key(claims=claims, scope=scope, at=received_at)
    request = UnsubscribeRequest(
        received_at=received_at,
        channel=evidence.channel,
        tenant_id=claims.tenant_id,
        stream_id=claims.stream_id,
        topic_id=claims.topic_id,
        scope=scope,
        campaign=claims.campaign or "",
        address=claims.recipient,
        address_hash=addresses.address_hash(claims.recipient, settings.ADDRESS_HASH_KEY.encode()),
        ip=evidence.ip,
        user_agent=evidence.user_agent[:500],
        token_key_id=evidence.token_key_id,
        capture_id=evidence.capture_id,
        repeat_key=key,
    )
    # A lone INSERT commits on its own; a transaction (two more round trips) is needed only to
    # apply it with it.
    try:
        with transaction.atomic() if apply_now else nullcontext():
            if not _insert_once(request):
                return None
            if apply_now:
                apply(request)
    except IntegrityError as exc:  # the stream or topic the token names is gone
        raise ServiceError("the link's list no longer exists", code="link_gone") from exc
    return request


def _insert_once(request: UnsubscribeRequest) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id, in one round trip: False (and nothing
    stored) when the repeat key or capture id is already there."""
    meta = UnsubscribeRequest._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT DO NOTHING RETURNING {quote(meta.pk.column)}"
    )
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
            tenant_id=tenant, stream_id=stream, topic_id=topic, digest=digest, scope=scope, window=w
        )
        for tenant, stream, topic in targets
        for scope in Scope.values
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
    if request.scope == Scope.COMMERCIAL:
        return Target(tenant=request.tenant, scope=rules.COMMERCIAL)
    if request.topic_id is not None:
        return Target(
            tenant=request.tenant, scope=rules.TOPIC, stream=request.stream, topic=request.topic
        )
    return Target(tenant=request.tenant, scope=rules.STREAM, stream=request.stream)


def apply(request: UnsubscribeRequest) -> UnsubscribeRequest:
    """Suppress what a recorded request asks for; applying it twice changes nothing."""
    with transaction.atomic():
        found = (
            UnsubscribeRequest.objects.select_for_update(of=("self",))
            .select_related("tenant", "stream", "topic__stream")
            .filter(pk=request.pk)
            .first()
        )
        if found is None:
            # Its stream or topic was deleted between the click and now: nothing left to stop.
            UnsubscribeRequest.objects.filter(pk=request.pk, applied_at__isnull=True).update(
                applied_at=_now(), scope_label="(the list no longer exists)"
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


def apply_pending(*, limit: int = 5000) -> int:
    """Apply recorded opt-outs not yet applied, oldest first; return how many were applied."""
    pending = UnsubscribeRequest.objects.filter(applied_at__isnull=True).order_by("received_at")
    count = 0
    for request in pending[:limit]:
        apply(request)
        count += 1
    return count


def unsubscribe(
    *, recipient: Recipient, evidence: Evidence, target: Target | None = None
) -> UnsubscribeRequest:
    """Opt out at once (the preference centre and mail): recorded and applied together."""
    scope = Scope.LINK
    if target is not None and target.scope == rules.COMMERCIAL:
        scope = Scope.COMMERCIAL
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
    return record(claims=claims, evidence=evidence, scope=scope, apply_now=True)


class Outcome(enum.Enum):
    RECORDED = "recorded"  # stored in the database now
    CAPTURED = "captured"  # stored in the local spool; the database takes it later
    REPEAT = "repeat"  # the same opt-out was already stored within the repeat window


def capture(*, claims: Claims, evidence: Evidence, scope: str = Scope.LINK) -> str | None:
    """Keep an opt-out on local disk while the database is unreachable; applied later by
    `drain_spool`. Returns the capture id, or None for a repeat already spooled."""
    received_at = evidence.received_at or _now()
    key = repeat_key(claims=claims, scope=scope, at=received_at)
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
            "scope": scope,
            "repeat_key": key.hex() if key else None,
        },
        name=key.hex() if key else None,
    )
    if not created:
        return None
    log.warning("database unavailable: opt-out captured to the spool as %s", capture_id)
    return capture_id


def record_or_capture(*, claims: Claims, evidence: Evidence, scope: str = Scope.LINK) -> Outcome:
    """Record the opt-out in the database, or on local disk if the database is down. Either way
    it is durable when this returns. Raises ServiceError when the link's list no longer exists.
    """
    evidence = dataclasses.replace(evidence, received_at=evidence.received_at or _now())
    try:
        request = record(claims=claims, evidence=evidence, scope=scope)
    except UNREACHABLE as exc:
        log.warning("cannot record an opt-out in the database: %s", exc)
        captured = capture(claims=claims, evidence=evidence, scope=scope)
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
                record(
                    claims=Claims(**entry["claims"]),
                    evidence=evidence,
                    scope=entry.get("scope", Scope.LINK),
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


# --- the preference centre -------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """One line of the preference centre."""

    key: str  # "stream", "commercial" or "topic:<slug>"
    label: str
    description: str
    receiving: bool
    locked: bool  # blocked by an entry the recipient cannot lift here (complaint, bounce, ...)


def _blocking_entry(recipient: Recipient, target: Target):
    from suppression.models import Suppression, active_q

    digest = addresses.address_hash(recipient.claims.recipient, settings.ADDRESS_HASH_KEY.encode())
    return Suppression.objects.filter(active_q(), address_hash=digest, scope_key=target.key).first()


def _liftable(entry) -> bool:
    return entry is None or entry.reason in (rules.UNSUBSCRIBE, rules.MANUAL)


def preference_choices(recipient: Recipient) -> list[Choice]:
    """The stream, each active topic and "all commercial mail", each with whether the recipient
    receives it (no entry of its own scope) and whether they may change it here."""
    lines = [
        (
            "stream",
            recipient.stream.name,
            "",
            Target(recipient.tenant, rules.STREAM, recipient.stream),
        )
    ]
    for topic in recipient.stream.topics.filter(is_active=True):
        lines.append(
            (
                f"topic:{topic.slug}",
                topic.name,
                topic.description,
                Target(recipient.tenant, rules.TOPIC, recipient.stream, topic),
            )
        )
    lines.append(("commercial", recipient.tenant.name, "", recipient.all_commercial))
    choices = []
    for key, label, description, target in lines:
        entry = _blocking_entry(recipient, target)
        choices.append(
            Choice(
                key=key,
                label=label,
                description=description,
                receiving=entry is None,
                locked=not _liftable(entry),
            )
        )
    return choices


def stopped_for_another_reason(recipient: Recipient) -> bool:
    """Is this stream's mail stopped by an entry the preference centre cannot change (a
    complaint, a bounce, an erasure, a legal hold, or one shared by all tenants)?"""
    from suppression import selectors

    verdict = selectors.is_suppressed(stream=recipient.stream, address=recipient.claims.recipient)
    if not verdict.suppressed:
        return False
    return verdict.scope == rules.GLOBAL or verdict.reason not in (rules.UNSUBSCRIBE, rules.MANUAL)


def _target_for_key(recipient: Recipient, key: str) -> Target:
    if key == "stream":
        return Target(recipient.tenant, rules.STREAM, recipient.stream)
    if key == "commercial":
        return recipient.all_commercial
    slug = key.removeprefix("topic:")
    topic = recipient.stream.topics.get(slug=slug)
    return Target(recipient.tenant, rules.TOPIC, recipient.stream, topic)


def save_preferences(
    *,
    recipient: Recipient,
    receiving: set[str],
    evidence: Evidence,
    wording: str,
    opt_outs_only: bool = False,
) -> list[str]:
    """Apply the preference centre form: opt out of each choice no longer wanted, and resubscribe
    to each wanted one that an unsubscribe had stopped (recording the consent given; lifting the
    entry retires the recipient's repeat keys, see `unsubscribe.receivers`). Entries the
    recipient cannot lift (complaint, erasure, objection, legal, bounces) stay. With
    `opt_outs_only` (a client over its budget) nothing is resubscribed. Returns the keys that
    changed."""
    changed = []
    with transaction.atomic():
        for choice in preference_choices(recipient):
            if choice.locked:
                continue
            wanted = choice.key in receiving
            if wanted == choice.receiving or (wanted and opt_outs_only):
                continue
            target = _target_for_key(recipient, choice.key)
            if not wanted:
                unsubscribe(recipient=recipient, evidence=evidence, target=target)
            else:
                entry = _blocking_entry(recipient, target)
                if entry is not None:
                    suppression_services.lift(
                        suppression=entry,
                        note="the recipient resubscribed in the preference centre",
                    )
                ConsentEvent.objects.create(
                    occurred_at=_now(),
                    tenant=recipient.tenant,
                    address_hash=entry.address_hash
                    if entry
                    else addresses.address_hash(
                        recipient.claims.recipient, settings.ADDRESS_HASH_KEY.encode()
                    ),
                    purpose=target.label,
                    action=ConsentEvent.Action.GIVEN,
                    channel=UnsubscribeRequest.Channel.PREFERENCE_CENTRE,
                    wording=wording,
                    ip=evidence.ip,
                    user_agent=evidence.user_agent[:500],
                )
            changed.append(choice.key)
    return changed
