"""Proof of compliance: one address's timeline of consents, opt-outs (with the time each took
against 48 hours and 10 US business days), suppressions, reports and requests, for staff (page,
CSV, PDF) and for the API, each read recorded in the audit trail."""

from __future__ import annotations

import csv
import datetime
import gzip
import io
import json
import re
import zlib

import pytest

from compliance import deadlines
from compliance.consent import services as consent_services
from compliance.dsr import proof
from compliance.dsr import services as dsr_services
from compliance.models import AuditEvent
from fbl.models import InboundMessage
from fbl.services import mentions
from suppression.services import entries

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
ADDRESS = "pat@example.com"
GRANTED = datetime.datetime(2025, 11, 3, 10, 15, tzinfo=UTC)
REPORTED = datetime.datetime(2025, 11, 19, 8, 0, tzinfo=UTC)
OPTED_OUT = datetime.datetime(2025, 11, 21, 9, 0, tzinfo=UTC)  # a Friday
APPLIED = datetime.datetime(2025, 11, 24, 10, 0, tzinfo=UTC)  # the Monday after: 73 hours
REQUESTED = datetime.datetime(2025, 11, 26, 12, 0, tzinfo=UTC)


def grant(tenant, address=ADDRESS, at=GRANTED):
    consent_services.record(
        tenant,
        [
            {
                "address": address,
                "purpose": "marketing",
                "action": "grant",
                "basis": "consent",
                "method": "web_form",
                "evidence": {
                    "collected_at": at.isoformat(),
                    "ip": "192.0.2.10",
                    "page_url": "https://acme.example/signup",
                    "wording": "Yes, send me the newsletter.",
                },
            }
        ],
    )


def report(tenant, address=ADDRESS, at=REPORTED) -> InboundMessage:
    """A processed complaint naming `address`, stored with its erasure index as fbl stores one."""
    raw = f"Feedback-Type: abuse\nOriginal-Rcpt-To: {address.upper()}\n\nreport\n".encode()
    message = InboundMessage.objects.create(
        received_at=at,
        source=InboundMessage.Source.HTTP,
        tenant=tenant,
        raw_gzip=gzip.compress(raw),
        size=len(raw),
        sha256=f"{tenant.pk}-{address}",
        kind="arf",
        status=InboundMessage.Status.PROCESSED,
        feedback_type="abuse",
        parsed={
            "kind": "arf",
            "feedback_type": "abuse",
            "reported_domain": "acme.example",
            # The report wrote the address in its own case; it is still this address.
            "recipients": [{"address": address.upper(), "status": None, "hard": False}],
        },
    )
    mentions.index_message(message, raw)
    return message


@pytest.fixture
def history(monkeypatch, default_tenant, suppress):
    """Every kind of entry for ADDRESS in the default tenant."""
    grant(default_tenant)
    report(default_tenant)
    monkeypatch.setattr(entries, "_now", lambda: APPLIED)
    suppress(ADDRESS, "unsubscribe", scope="commercial", created_at=OPTED_OUT, channel="one_click")
    monkeypatch.setattr(dsr_services, "_now", lambda: REQUESTED)
    dsr_services.open_request(address=ADDRESS, kind="access", tenant=default_tenant)
    return default_tenant


@pytest.fixture
def elsewhere(make_tenant, suppress):
    """The same address at another tenant: a consent and a report nobody else may see."""
    other = make_tenant("globex")
    grant(other, at=GRANTED - datetime.timedelta(days=30))
    report(other)
    return other


def test_the_timeline_holds_every_kind_in_order(history):
    found = proof.proof_of("  Pat@Example.COM ", tenant=history)
    assert found.address == ADDRESS
    kinds = [e.kind for e in found.entries]
    # The grant, the complaint report, the opt-out's own withdrawal of consent and the opt-out
    # (same instant), the request, then the suppression's history as written.
    assert kinds == ["consent", "report", "consent", "opt_out", "request", "suppression"]
    times = [e.at for e in found.entries]
    assert times == sorted(times)
    grant_entry = found.entries[0]
    assert grant_entry.details["evidence"]["ip"] == "192.0.2.10"
    assert grant_entry.details["evidence"]["wording"] == "Yes, send me the newsletter."
    assert found.entries[2].details["action"] == "withdrawn"
    assert found.entries[5].details["action"] == "add"
    assert found.entries[5].details["reason"] == "unsubscribe"
    assert found.entries[4].details["kind"] == "access"


def test_an_opt_out_shows_its_apply_time_against_both_deadlines(history):
    opt_out = next(
        e for e in proof.proof_of(ADDRESS, tenant=history).entries if e.kind == "opt_out"
    )
    assert opt_out.details["seconds_to_apply"] == 73 * 3600
    assert opt_out.details["within_48_hours"] is False
    # 10 business days from Friday 21 November 2025, skipping Thanksgiving (27 November).
    assert opt_out.details["can_spam_due"] == datetime.date(2025, 12, 8)
    assert opt_out.details["within_10_business_days"] is True
    assert "later than 48 hours" in opt_out.summary
    assert "within 10 business days" in opt_out.summary


def test_can_spam_business_days_skip_weekends_and_federal_holidays():
    wednesday_before_thanksgiving = datetime.datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    assert deadlines.can_spam_due(wednesday_before_thanksgiving) == datetime.date(2026, 12, 10)
    late = deadlines.opt_out_timing(
        wednesday_before_thanksgiving, datetime.datetime(2026, 12, 11, 9, 0, tzinfo=UTC)
    )
    assert late["within_10_business_days"] is False
    quick = deadlines.opt_out_timing(
        wednesday_before_thanksgiving, wednesday_before_thanksgiving + datetime.timedelta(hours=1)
    )
    assert (quick["within_48_hours"], quick["seconds_to_apply"]) == (True, 3600)


def test_an_opt_out_not_yet_applied_is_late_once_its_deadline_passed(monkeypatch):
    monkeypatch.setattr(deadlines, "_now", lambda: datetime.datetime(2026, 12, 1, tzinfo=UTC))
    pending = deadlines.opt_out_timing(datetime.datetime(2026, 11, 2, tzinfo=UTC), None)
    assert pending["applied"] is False
    assert pending["seconds_to_apply"] is None
    assert (pending["within_48_hours"], pending["within_10_business_days"]) == (False, False)


def test_across_tenants_staff_see_both_and_a_tenant_only_its_own(history, elsewhere):
    everyone = proof.proof_of(ADDRESS)
    tenants = {e.details["tenant"] for e in everyone.entries}
    assert tenants == {"default", "globex"}
    assert everyone.entries[0].details["tenant"] == "globex"  # the older grant
    mine = proof.proof_of(ADDRESS, tenant=elsewhere)
    assert [e.kind for e in mine.entries] == ["consent", "report"]
    assert {e.details["tenant"] for e in mine.entries} == {"globex"}


def test_an_invalid_address_is_refused(db):
    from compliance.errors import ServiceError

    with pytest.raises(ServiceError) as refused:
        proof.proof_of("not an address")
    assert refused.value.code == "invalid_address"


# --- the admin page and its files ---------------------------------------------------------------


def accesses() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="access").order_by("id"))


def test_staff_see_the_timeline_and_the_view_is_audited(staff_client, history):
    page = staff_client.get("/admin/proof/", {"address": ADDRESS}, REMOTE_ADDR="203.0.113.5")
    assert page.status_code == 200
    body = page.content.decode()
    for kind in proof.KINDS:
        assert f'class="proof-{kind}"' in body
    assert "later than 48 hours, within 10 business days" in body
    [seen] = accesses()
    assert seen.changes == {"what": "proof_page", "tenant": None}
    assert (seen.actor_user_id, seen.actor_label, seen.remote_addr) == (
        staff_client.user.pk,
        "staff",
        "203.0.113.5",
    )
    assert seen.object_pk == proof.hash_of(ADDRESS)[1].hex()
    assert ADDRESS not in str(seen.changes) + seen.object_repr


def test_the_page_is_linked_from_the_request_list_and_an_empty_form_records_nothing(staff_client):
    listing = staff_client.get("/admin/dsr/datasubjectrequest/")
    assert 'href="/admin/proof/"' in listing.content.decode()
    assert staff_client.get("/admin/proof/").status_code == 200
    assert accesses() == []


def test_the_csv_download_holds_every_entry(staff_client, history):
    answer = staff_client.get("/admin/proof/csv", {"address": ADDRESS})
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/csv")
    assert "attachment" in answer["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.content.decode())))
    assert [r["kind"] for r in rows] == [
        "consent",
        "report",
        "consent",
        "opt_out",
        "request",
        "suppression",
    ]
    assert rows[0]["at"] == "2025-11-03 10:15:00 UTC"
    assert json.loads(rows[3]["details"])["seconds_to_apply"] == 73 * 3600
    assert accesses()[-1].changes["what"] == "proof_csv"


def pdf_text(document: bytes) -> str:
    """The PDF's page content, its compressed streams inflated."""
    text = document.decode("latin-1")
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", document, re.S):
        try:
            text += zlib.decompress(stream).decode("latin-1")
        except zlib.error:
            continue
    return text


def test_the_pdf_download_is_a_pdf_naming_the_address(staff_client, history):
    answer = staff_client.get("/admin/proof/pdf", {"address": ADDRESS, "tenant": "default"})
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/pdf"
    assert answer.content.startswith(b"%PDF")
    text = pdf_text(answer.content)
    assert ADDRESS in text
    assert "later than 48 hours" in text
    assert accesses()[-1].changes == {"what": "proof_pdf", "tenant": "default"}


def test_staff_without_the_permission_are_refused(client, django_user_model, history):
    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(clerk)
    assert client.get("/admin/proof/", {"address": ADDRESS}).status_code == 403
    assert client.get("/admin/proof/pdf", {"address": ADDRESS}).status_code == 403
    assert accesses() == []


# --- the API ------------------------------------------------------------------------------------


def test_the_api_answers_the_same_timeline(api_client, history):
    answer = api_client("consent:read").get("/api/v1/proof", {"address": ADDRESS})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["address"] == ADDRESS
    assert body["tenant"] is None
    assert [e["kind"] for e in body["entries"]] == [e.kind for e in proof.proof_of(ADDRESS).entries]
    opt_out = next(e for e in body["entries"] if e["kind"] == "opt_out")
    assert opt_out["details"]["can_spam_due"] == "2025-12-08"
    assert opt_out["at"] == "2025-11-21T09:00:00Z"
    seen = accesses()[-1]
    assert (seen.changes["what"], seen.via) == ("proof_api", "api")


def test_a_tenant_bound_key_sees_only_its_tenant(api_client, history, elsewhere):
    theirs = api_client("consent:read", tenant=elsewhere)
    body = theirs.get("/api/v1/proof", {"address": ADDRESS}).json()
    assert body["tenant"] == "globex"
    assert {e["details"]["tenant"] for e in body["entries"]} == {"globex"}
    assert theirs.get("/api/v1/proof", {"address": ADDRESS, "tenant": "default"}).status_code == 403


def test_the_api_needs_consent_read_and_a_valid_address(api_client, history):
    assert api_client("dsr:read").get("/api/v1/proof", {"address": ADDRESS}).status_code == 403
    refused = api_client("consent:read").get("/api/v1/proof", {"address": "nope"})
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_address")
