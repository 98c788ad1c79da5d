"""Erasure (GDPR Art. 17): the address leaves every table and every stored message, its hash
keeps it blocked everywhere, an unknown address is answered the same way, and an interrupted
erasure stays in progress and resumes."""

from __future__ import annotations

import base64
import email
import email.policy
import gzip
import json
import quopri
from urllib.parse import urlparse

import pytest
from django.apps import apps
from django.db import DatabaseError, connection, models, transaction

from compliance.consent.models import ConsentRecord, PendingConfirmation
from compliance.dsr import services
from compliance.dsr.models import DataSubjectRequest
from compliance.models import AuditEvent, SendingIdentity
from fbl import ingest
from fbl.models import InboundMessage, Mention
from suppression import erasure_steps, rules
from suppression.models import Suppression, SuppressionEvent
from tests.fbl.messages import ENCLOSED, arf, crlf, dsn
from tests.fbl.test_kumomta import bounce as hard_bounce
from tests.fbl.test_kumomta import response

pytestmark = pytest.mark.django_db

# A local part no other data shares, so finding it alone anywhere is a leak.
LOCAL = "kestrel.quill7"
ADDRESS = f"{LOCAL}@subject-mail.example"
SPELLINGS = [ADDRESS, f"{LOCAL}=subject-mail.example", f"{LOCAL}%40subject-mail.example", LOCAL]
CHECK = "/api/v1/suppressions/check"


def mixed_case(address: str) -> str:
    return "".join(c.upper() if i % 2 else c for i, c in enumerate(address))


# --- building the address into every corner of the service ---------------------------------


def enclosed(address: str) -> str:
    return ENCLOSED.replace("alice@example.com", address).replace(
        "Return-Path: <news@sender.example>",
        f"Return-Path: <bounces+{address.replace('@', '=')}@sender.example>",
    )


def complaint(address: str) -> bytes:
    return arf(
        "Feedback-Type: abuse\nUser-Agent: ISP-FBL/1.0\nVersion: 1\n"
        f"Original-Rcpt-To: {mixed_case(address)}\n",
        enclosed=enclosed(address),
    )


def bounce(address: str) -> bytes:
    return dsn(
        f"Final-Recipient: rfc822; {address.upper()}\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\n",
        enclosed=enclosed(address),
    )


def encoded_bounce(address: str) -> bytes:
    """A bounce whose returned headers are base64 and whose notice is quoted-printable."""
    notice = quopri.encodestring(f"Delivery to {address} failed =(\n".encode()).decode()
    headers = base64.encodebytes(enclosed(address).encode()).decode()
    return crlf(
        "From: MAILER-DAEMON@mx.other.example\nTo: news@sender.example\n"
        "Subject: failure notice\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
        f"{notice}\n--B\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.other.example\n\n"
        f"Final-Recipient: rfc822; {address}\nAction: failed\nStatus: 5.1.1\n\n"
        "--B\nContent-Type: text/rfc822-headers\nContent-Transfer-Encoding: base64\n\n"
        f"{headers}\n--B--\n"
    )


def consent(address: str, method: str = "web_form") -> dict:
    return {
        "address": mixed_case(address),
        "purpose": "marketing",
        "action": "grant",
        "basis": "consent",
        "method": method,
        "evidence": {
            "collected_at": "2026-11-02T10:15:00Z",
            "ip": "192.0.2.10",
            "user_agent": f"Mozilla/5.0 (for {address})",
            "page_url": f"https://acme.example/signup?email={address}",
            "wording": "Yes, send me the Acme newsletter.",
        },
    }


@pytest.fixture
def everywhere(api_client, client, mint, default_tenant):
    """The address in a suppression, a one-click unsubscribe, an ARF complaint, DSN bounces
    (one with encoded parts), a relay's bounce event, a consent with evidence, a pending double
    opt-in, an import job and the audit trail."""
    writer = api_client("suppression:write", "consent:write")
    answer = writer.post(
        "/api/v1/suppressions/",
        {"address": mixed_case(ADDRESS), "reason": "manual", "scope": "global"},
        format="json",
    )
    assert answer.status_code in (200, 201), answer.content
    link = mint(mixed_case(ADDRESS))
    answer = client.post(
        urlparse(link.url).path,
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
        HTTP_USER_AGENT=f"Mail client of {ADDRESS}",
    )
    assert answer.status_code == 200
    for raw in (complaint(ADDRESS), bounce(ADDRESS), encoded_bounce(ADDRESS)):
        ingest.receive(raw, source="pipe", envelope_sender=ADDRESS.upper())
    relay = api_client("reports:write")
    event = hard_bounce(
        recipient=mixed_case(ADDRESS),
        meta={"tenant": "default", "stream": "marketing"},
        response=response(550, "5.1.1", f"<{ADDRESS}>: user unknown", f"RCPT TO:<{ADDRESS}>"),
    )
    answer = relay.post(
        "/api/v1/events/kumomta", data=json.dumps(event), content_type="application/json"
    )
    assert answer.status_code == 200, answer.content
    assert writer.post("/api/v1/consents", consent(ADDRESS), format="json").status_code == 201
    pending = consent(ADDRESS, method="double_opt_in")
    assert writer.post("/api/v1/consents", pending, format="json").status_code == 202
    body = f"email,reason,scope\nfriend@example.org,manual,\n{ADDRESS.upper()},manual,stream:x\n"
    answer = writer.post("/api/v1/suppressions/import", data=body.encode(), content_type="text/csv")
    assert answer.status_code == 202, answer.content
    identity = SendingIdentity.objects.create(
        pattern=ADDRESS,
        tenant=default_tenant,
        stream=default_tenant.streams.get(slug="marketing"),
    )
    identity.delete()  # the audit trail keeps its pattern
    return default_tenant


def erase(address: str) -> DataSubjectRequest:
    request = services.open_request(address=address, kind="erasure", tenant=None)
    services.verify_by_staff(request, user=None, note="identity shown at the desk")
    request.refresh_from_db()
    services.carry_out(request)
    request.refresh_from_db()
    return request


# --- the full scan ----------------------------------------------------------------------------


def _texts_of(value) -> list[str]:
    """What a stored value can reveal: text, JSON, and binary (gzip opened, MIME parts decoded)."""
    if value is None:
        return []
    if isinstance(value, memoryview | bytes | bytearray):
        data = bytes(value)
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        texts = [data.decode("latin-1")]
        message = email.message_from_bytes(data, policy=email.policy.compat32)
        for part in message.walk():
            if not part.is_multipart():
                payload = part.get_payload(decode=True) or b""
                texts.append(payload.decode("latin-1"))
        return texts
    if isinstance(value, dict | list):
        return [json.dumps(value, ensure_ascii=False)]
    return [str(value)]


SCANNED = (models.CharField, models.TextField, models.JSONField, models.BinaryField)


def leaks(*needles: str) -> list[str]:
    found = []
    lowered = [n.lower() for n in needles]
    for model in apps.get_models():
        fields = [f for f in model._meta.concrete_fields if isinstance(f, SCANNED)]
        if not fields:
            continue
        for row in model._base_manager.values_list("pk", *[f.attname for f in fields]):
            for field, value in zip(fields, row[1:], strict=True):
                for text in _texts_of(value):
                    if any(n in text.lower() for n in lowered):
                        found.append(f"{model._meta.label}.{field.name} #{row[0]}")
    return found


def test_the_scan_finds_the_address_before_an_erasure(everywhere):
    places = {leak.split(" #")[0] for leak in leaks(*SPELLINGS)}
    assert {
        "suppression.Suppression.address",
        "suppression.ImportJob.content",
        "unsubscribe.UnsubscribeRequest.address",
        "fbl.InboundMessage.raw_gzip",
        "fbl.RelayEvent.record",
        "consent.ConsentRecord.address",
        "consent.PendingConfirmation.address",
        "compliance.AuditEvent.changes",
    } <= places


def test_after_an_erasure_the_address_is_nowhere_and_still_suppressed(everywhere, api_client):
    request = erase(ADDRESS.upper())

    assert request.status == DataSubjectRequest.Status.FULFILLED
    assert leaks(*SPELLINGS) == []
    reader = api_client("suppression:read")
    for stream in ("marketing", "transactional"):
        answer = reader.get(CHECK, {"address": mixed_case(ADDRESS), "stream": stream}).json()
        assert (answer["suppressed"], answer["reason"]) == (True, "erasure")
    # What must stay, stays: the entries by hash, the consent's time and wording, the reports.
    entry = Suppression.objects.get(
        address_hash=request.address_hash, scope_key=rules.scope_key(None, rules.GLOBAL, None)
    )
    assert (entry.address, entry.reason) == (None, "erasure")
    assert SuppressionEvent.objects.filter(action=SuppressionEvent.Action.ERASE).exists()
    record = ConsentRecord.objects.get(method="web_form")
    assert record.occurred_at and record.text.body == "Yes, send me the Acme newsletter."
    assert (record.ip, record.user_agent, record.page_url) == (None, "", "")
    assert InboundMessage.objects.count() == 3
    assert "@erased.invalid" in InboundMessage.objects.order_by("pk").first().raw().decode()
    assert not Mention.objects.filter(address_hash=request.address_hash).exists()
    assert PendingConfirmation.objects.get().evidence == {}
    # The erasure itself is in the audit trail, by hash.
    erasure = AuditEvent.objects.get(action="access", changes__what="erasure")
    assert erasure.object_pk == bytes(request.address_hash).hex()


def test_a_reimport_of_an_erased_address_stays_blocked(everywhere, api_client):
    erase(ADDRESS)
    writer = api_client("suppression:write", "suppression:read")
    answer = writer.post(
        "/api/v1/suppressions/import",
        data=f"email,reason\n{ADDRESS},unsubscribe\n".encode(),
        content_type="text/csv",
    )
    assert answer.status_code == 202
    answer = writer.get(CHECK, {"address": ADDRESS, "stream": "transactional"}).json()
    assert answer["suppressed"] is True
    assert answer["reason"] == "erasure"


def test_an_unknown_address_gets_the_same_outcome(everywhere):
    known = erase(ADDRESS)
    unknown = erase("never-seen@elsewhere.example")

    def outcome(request):
        steps = [(s.step, s.note) for s in request.steps.order_by("occurred_at", "pk")]
        return request.status, request.address, request.progress, steps

    assert outcome(known) == outcome(unknown)
    assert unknown.status == DataSubjectRequest.Status.FULFILLED


def test_an_interrupted_erasure_stays_in_progress_and_resumes(everywhere, monkeypatch):
    def database_away(subject, batch):
        raise DatabaseError("the database went away")

    real = erasure_steps._steps["fbl_messages"]
    failing = erasure_steps.Step(real.name, real.order, database_away)
    monkeypatch.setitem(erasure_steps._steps, "fbl_messages", failing)
    request = services.open_request(address=ADDRESS, kind="erasure", tenant=None)
    services.verify_by_staff(request, user=None, note="identity shown at the desk")
    request.refresh_from_db()
    with pytest.raises(DatabaseError):
        services.carry_out(request)

    request.refresh_from_db()
    assert request.status == DataSubjectRequest.Status.IN_PROGRESS
    assert request.address == ADDRESS  # the request itself is forgotten last
    assert request.progress["done"][:2] == ["suppression_entry", "suppression_entries"]
    assert "fbl_messages" not in request.progress["done"]
    assert (
        not Suppression.objects.filter(address__isnull=False)
        .exclude(address="friend@example.org")
        .exists()
    )
    assert InboundMessage.objects.filter(raw_gzip__isnull=False).count() == 3

    monkeypatch.setitem(erasure_steps._steps, "fbl_messages", real)
    services.carry_out(request)
    request.refresh_from_db()
    assert request.status == DataSubjectRequest.Status.FULFILLED
    assert leaks(*SPELLINGS) == []
    # The steps done before the outage are not done twice.
    erased = SuppressionEvent.objects.filter(action=SuppressionEvent.Action.ERASE)
    per_entry = list(erased.values_list("suppression_id", flat=True))
    assert per_entry and len(per_entry) == len(set(per_entry))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL trigger")
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE compliance_auditevent SET object_repr = 'rewritten'",
        "UPDATE compliance_auditevent SET action = 'create', object_repr = 'x@erased.invalid'",
        "DELETE FROM compliance_auditevent",
        "UPDATE suppression_suppressionevent SET note = 'rewritten'",
        "UPDATE suppression_suppressionevent SET reason = 'manual', note = 'x@erased.invalid'",
        "DELETE FROM suppression_suppressionevent",
    ],
)
def test_the_histories_allow_an_erasure_and_nothing_else(everywhere, statement):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
