"""Every write to the consent ledger: records from the API, the preference centre, double opt-in
and imports, and the withdrawal each opt-out leaves. The ledger row and the purpose's current
state are written in one transaction."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from compliance import audit, jurisdictions
from compliance.consent import rules, signals, sql
from compliance.consent.models import ConsentRecord, ConsentState, ConsentText
from compliance.errors import ServiceError
from compliance.models import OptOutRequest, Stream, Tenant, Topic
from compliance.selectors import stream_of, topic_of
from suppression import addresses
from suppression import rules as suppression_rules

__all__ = [
    "ConsentInvalid",
    "Prepared",
    "prepare",
    "record",
    "record_prepared",
    "text_for",
    "grant_in_preference_centre",
    "withdraw_for_opt_out",
    "withdraw_for_opt_outs",
]

Channel = OptOutRequest.Channel

# How an opt-out arrived, as the ledger's method.
METHOD_FOR_CHANNEL = {
    Channel.ONE_CLICK: rules.UNSUBSCRIBE,
    Channel.LANDING_PAGE: rules.UNSUBSCRIBE,
    Channel.MAILTO: rules.UNSUBSCRIBE,
    Channel.PREFERENCE_CENTRE: rules.PREFERENCE_CENTRE,
    Channel.COMPLAINT: rules.COMPLAINT,
    Channel.OBJECTION: rules.STAFF,
    Channel.API: rules.API,
    Channel.STAFF: rules.STAFF,
    Channel.IMPORT: rules.IMPORT,
}

MAX_TEXT = 20_000  # characters of one wording


class ConsentInvalid(ServiceError):
    """Records the rules refuse; `errors` lists them as {"index", "field", "detail"}."""

    code = "invalid_consent"

    def __init__(self, errors: list[dict]):
        first = errors[0]
        where = f"record {first['index']}: " if first.get("index") is not None else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{where}{first['detail']}{more}")
        self.errors = errors


@dataclass(frozen=True)
class Prepared:
    """One record, checked and resolved, ready to write."""

    tenant: Tenant
    stream: Stream
    topic: Topic | None
    address: str
    address_hash: bytes
    action: str
    basis: str
    method: str
    jurisdiction: str
    occurred_at: datetime.datetime
    evidence: dict = field(default_factory=dict)
    text_id: int | None = None
    import_key: str | None = None
    cause: str = ""

    @property
    def purpose(self) -> str:
        return f"{self.stream.slug}/{self.topic.slug}" if self.topic else self.stream.slug


def _hash_key() -> bytes:
    return settings.ADDRESS_HASH_KEY.encode()


def text_for(tenant: Tenant | None, body: str) -> ConsentText:
    """The stored version of this wording, created on first use."""
    digest = hashlib.sha256(body.encode()).hexdigest()
    text = ConsentText.objects.filter(sha256=digest, tenant=tenant).first()
    if text is None:
        try:
            with transaction.atomic():
                text = ConsentText.objects.create(sha256=digest, tenant=tenant, body=body)
        except IntegrityError:  # stored at the same moment by another request
            text = ConsentText.objects.get(sha256=digest, tenant=tenant)
    return text


def _when(value, *, field_name: str) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        moment = parse_datetime(str(value)) if value else None
        if moment is None:
            raise rules.ConsentInputError(
                f"{field_name} {value!r} is not an ISO 8601 date and time", field=field_name
            )
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, datetime.UTC)
    if moment > timezone.now() + datetime.timedelta(minutes=5):
        raise rules.ConsentInputError(f"{field_name} is in the future", field=field_name)
    return moment


def _purpose_of(tenant: Tenant, text: str, known: dict) -> tuple[Stream, Topic | None]:
    """The stream and topic `text` names; raises ConsentInputError. `known` keeps each answer
    (refusals too), so a file naming a few purposes a million times asks the database a few
    times."""
    found = known.get(("purpose", text))
    if found is None:
        try:
            purpose = rules.Purpose.parse(text)
            stream = stream_of(tenant, purpose.stream)
            found = (stream, topic_of(stream, purpose.topic) if purpose.topic else None)
        except rules.ConsentInputError as exc:
            found = exc
        except ServiceError as exc:
            found = rules.ConsentInputError(exc.message, field="purpose")
        known[("purpose", text)] = found
    if isinstance(found, rules.ConsentInputError):
        # A fresh error each time: raising the kept one again would grow its traceback.
        raise rules.ConsentInputError(str(found), field=found.field)
    return found


def _wording_of(tenant: Tenant, wording_id, known: dict) -> ConsentText:
    """The stored text a record names by id; raises ConsentInputError."""
    key = ("wording_id", str(wording_id))
    if key not in known:
        known[key] = (
            ConsentText.objects.filter(pk=wording_id).first() if str(wording_id).isdigit() else None
        )
    text = known[key]
    if text is None or text.tenant_id not in (None, tenant.pk):
        raise rules.ConsentInputError(f"unknown wording id {wording_id!r}", field="evidence")
    return text


def _prepare_one(
    tenant: Tenant, item: dict, *, now: datetime.datetime, texts: dict, known: dict | None = None
) -> Prepared:
    """Check one record (the API's and the import's one set of rules) and resolve its purpose,
    wording and address; raises ConsentInputError. `known` memoises lookups across calls."""
    known = {} if known is None else known
    verb = str(item.get("action") or "")
    basis = str(item.get("basis") or "")
    method = str(item.get("method") or "")
    rules.check_vocabulary(action=verb, basis=basis, method=method)
    action = rules.ACTION_FOR_VERB[verb]
    try:
        address = addresses.normalise(str(item.get("address") or ""))
    except addresses.InvalidAddress as exc:
        raise rules.ConsentInputError(
            f"invalid address {item.get('address')!r}: {exc.reason}", field="address"
        ) from None
    stream, topic = _purpose_of(tenant, str(item.get("purpose") or ""), known)
    try:
        jurisdiction = jurisdictions.normalise(item.get("jurisdiction") or tenant.jurisdiction)
    except jurisdictions.UnknownJurisdiction as exc:
        raise rules.ConsentInputError(str(exc), field="jurisdiction") from None
    evidence = dict(item.get("evidence") or {})
    wording_id = evidence.pop("wording_id", None)
    text_id = None
    if wording_id not in (None, ""):
        text = _wording_of(tenant, wording_id, known)
        evidence["wording"] = text.body
        texts[text.body] = text
        text_id = text.pk
    missing = rules.missing_evidence(method, action, evidence)
    if missing:
        raise rules.ConsentInputError(
            f"method {method} needs evidence: {', '.join(missing)}", field="evidence"
        )
    unknown = sorted(set(evidence) - set(rules.EVIDENCE_FIELDS))
    if unknown:
        raise rules.ConsentInputError(
            f"unknown evidence field(s): {', '.join(unknown)}", field="evidence"
        )
    if len(str(evidence.get("wording") or "")) > MAX_TEXT:
        raise rules.ConsentInputError(
            f"the wording is longer than {MAX_TEXT} characters", field="evidence"
        )
    occurred_at = (
        _when(evidence["collected_at"], field_name="collected_at")
        if evidence.get("collected_at")
        else now
    )
    if evidence.get("ip"):
        evidence["ip"] = _ip(evidence["ip"])
    return Prepared(
        tenant=tenant,
        stream=stream,
        topic=topic,
        address=address,
        address_hash=addresses.address_hash(address, _hash_key()),
        action=action,
        basis=basis,
        method=method,
        jurisdiction=jurisdiction,
        occurred_at=occurred_at,
        evidence=evidence,
        text_id=text_id,
    )


def _ip(value) -> str:
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise rules.ConsentInputError(
            f"ip {value!r} is not an IP address", field="evidence"
        ) from None


def prepare(tenant: Tenant, items: Sequence[dict]) -> list[Prepared]:
    """Check every record; raise ConsentInvalid listing each one refused (nothing is written)."""
    now = timezone.now()
    texts: dict[str, ConsentText] = {}
    prepared, errors = [], []
    for index, item in enumerate(items):
        try:
            prepared.append(_prepare_one(tenant, item, now=now, texts=texts))
        except rules.ConsentInputError as exc:
            errors.append({"index": index, "field": exc.field, "detail": str(exc)})
    if errors:
        raise ConsentInvalid(errors)
    return prepared


def record(tenant: Tenant, items: Sequence[dict]) -> list[ConsentRecord]:
    """Check and write records given or withdrawn elsewhere (API, staff); all or none."""
    return record_prepared(prepare(tenant, items))


def _text_ids(prepared: Iterable[Prepared]) -> dict[tuple[int, str], int]:
    ids = {}
    for item in prepared:
        body = str(item.evidence.get("wording") or "")
        if item.text_id is None and body and (item.tenant.pk, body) not in ids:
            ids[(item.tenant.pk, body)] = text_for(item.tenant, body).pk
    return ids


def _record_row(item: Prepared, text_id: int | None, actor_fields: dict) -> ConsentRecord:
    evidence = item.evidence
    return ConsentRecord(
        **actor_fields,
        tenant=item.tenant,
        stream=item.stream,
        topic=item.topic,
        address=item.address,
        address_hash=item.address_hash,
        action=item.action,
        basis=item.basis,
        method=item.method,
        jurisdiction=item.jurisdiction,
        occurred_at=item.occurred_at,
        ip=evidence.get("ip") or None,
        user_agent=str(evidence.get("user_agent") or "")[:500],
        page_url=str(evidence.get("page_url") or "")[:2000],
        form_id=str(evidence.get("form_id") or "")[:200],
        text_id=text_id,
        privacy_notice_version=str(evidence.get("privacy_notice_version") or "")[:100],
        confirmed_at=evidence.get("confirmed_at"),
        confirmed_ip=evidence.get("confirmed_ip"),
        cause=item.cause[:100],
        import_key=item.import_key,
    )


def record_prepared(prepared: Sequence[Prepared]) -> list[ConsentRecord]:
    """Write checked records and move each purpose's state forward; one transaction."""
    if not prepared:
        return []
    actor_fields = ConsentRecord.actor_fields(audit.current_actor())
    with transaction.atomic():
        text_ids = _text_ids(prepared)
        rows = [
            _record_row(
                item,
                # A wording named by id is that text, even one shared by all tenants.
                item.text_id
                or text_ids.get((item.tenant.pk, str(item.evidence.get("wording") or ""))),
                actor_fields,
            )
            for item in prepared
        ]
        rows = ConsentRecord.objects.bulk_create(rows)
        advance_states(rows)
        withdrawals = [row for row in rows if row.action == rules.WITHDRAWN]
        if withdrawals:
            signals.withdrawn.send(sender=ConsentRecord, records=withdrawals)
    return rows


_UPSERT = f"""
INSERT INTO consent_consentstate
    (tenant_id, address_hash, stream_id, topic_id, action, basis, since, record_id)
VALUES {{values}}
{sql.STATE_ADVANCE}
"""
_UPSERT_BATCH = 1000


def advance_states(rows: Sequence[ConsentRecord]) -> None:
    """Make each row the current state of its purpose unless a later one already is. A record
    that arrives late (an import of old consents) never overrides a newer state."""
    latest: dict[tuple, ConsentRecord] = {}
    for row in rows:
        key = (bytes(row.address_hash), row.tenant_id, row.stream_id, row.topic_id)
        held = latest.get(key)
        if held is None or (row.occurred_at, row.pk) > (held.occurred_at, held.pk):
            latest[key] = row
    chosen = list(latest.values())
    with connection.cursor() as cursor:
        for start in range(0, len(chosen), _UPSERT_BATCH):
            batch = chosen[start : start + _UPSERT_BATCH]
            params: list = []
            for row in batch:
                params += [
                    row.tenant_id,
                    bytes(row.address_hash),
                    row.stream_id,
                    row.topic_id,
                    row.action,
                    row.basis,
                    row.occurred_at,
                    row.pk,
                ]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(batch))
            cursor.execute(_UPSERT.format(values=values), params)


def _purposes_of(target) -> list[tuple[Stream, Topic | None]]:
    """What an opt-out's scope withdraws: a topic; a stream (its topics follow it); for all
    commercial mail (or everything), every commercial stream of the tenant."""
    if target.scope == suppression_rules.TOPIC:
        return [(target.topic.stream, target.topic)]
    if target.scope == suppression_rules.STREAM:
        return [(target.stream, None)]
    streams = Stream.objects.filter(tenant=target.tenant, kind=Stream.Kind.COMMERCIAL)
    return [(stream, None) for stream in streams.order_by("pk")]


def grant_in_preference_centre(
    *, target, address: str, ip: str | None, user_agent: str, wording: str, page_url: str = ""
) -> list[ConsentRecord]:
    """A recipient chose again, in the preference centre, mail an unsubscribe had stopped: a
    grant for each purpose the choice covers, with what the page showed."""
    normalised = addresses.normalise(address)
    now = timezone.now()
    evidence = {"ip": ip, "user_agent": user_agent[:500], "wording": wording, "page_url": page_url}
    return record_prepared(
        [
            Prepared(
                tenant=target.tenant,
                stream=stream,
                topic=topic,
                address=normalised,
                address_hash=addresses.address_hash(normalised, _hash_key()),
                action=rules.GRANTED,
                basis=rules.CONSENT,
                method=rules.PREFERENCE_CENTRE,
                jurisdiction=target.tenant.jurisdiction,
                occurred_at=now,
                evidence=evidence,
            )
            for stream, topic in _purposes_of(target)
        ]
    )


def withdraw_for_opt_out(*, request: OptOutRequest, target, address: str, reason: str) -> int:
    """The withdrawal an opt-out stands for, one record per purpose it covers; returns how many.
    An opt-out shared by every tenant withdraws nothing: consent belongs to one tenant."""
    if target.tenant is None:
        return 0
    current = {
        (s.stream_id, s.topic_id): s.basis
        for s in ConsentState.objects.filter(
            tenant=target.tenant, address_hash=request.address_hash
        )
    }
    method = METHOD_FOR_CHANNEL.get(request.channel, rules.API)
    prepared = [
        Prepared(
            tenant=target.tenant,
            stream=stream,
            topic=topic,
            address=address,
            address_hash=bytes(request.address_hash),
            action=rules.WITHDRAWN,
            basis=current.get((stream.pk, topic.pk if topic else None), rules.CONSENT),
            method=method,
            jurisdiction="",
            occurred_at=request.received_at,
            cause=f"opt-out #{request.pk} ({request.channel}, {reason})",
        )
        for stream, topic in _purposes_of(target)
    ]
    return len(record_prepared(prepared))


def withdraw_for_opt_outs(changes: Sequence) -> list[sql.Withdrawal]:
    """`withdraw_for_opt_out` for every opt-out of a batch applied at once (the `opt_out` of
    each suppression.signals.BulkChange that has one), in one statement; returns the records
    written. Announces them with `signals.withdrawn_in_bulk`. PostgreSQL only."""
    opt_outs = []
    for change in changes:
        request, target = change.opt_out, change.target
        if request is None or target.tenant is None:
            continue  # no opt-out recorded, or one shared by every tenant (see above)
        if target.scope == suppression_rules.TOPIC:
            stream_id, topic_id = target.topic.stream_id, target.topic.pk
        elif target.scope == suppression_rules.STREAM:
            stream_id, topic_id = target.stream.pk, None
        else:
            stream_id, topic_id = None, None  # every commercial stream of the tenant
        opt_outs.append(
            sql.OptOutPurpose(
                tenant_id=target.tenant.pk,
                address_hash=bytes(change.address_hash),
                address=change.address,
                stream_id=stream_id,
                topic_id=topic_id,
                occurred_at=request.received_at,
                method=METHOD_FOR_CHANNEL.get(request.channel, rules.API),
                cause=f"opt-out #{request.id} ({request.channel}, {change.reason})"[:100],
            )
        )
    if not opt_outs:
        return []
    rows = sql.withdraw_for_opt_outs(opt_outs, now=timezone.now(), actor=audit.current_actor())
    if rows:
        signals.withdrawn_in_bulk.send(sender=ConsentRecord, rows=rows)
    return rows
