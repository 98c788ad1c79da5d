"""The consent ledger: records with their evidence through the API, state from sequences of
events, a ledger nobody can rewrite, and a withdrawal for every opt-out, whichever way it came."""

from __future__ import annotations

import datetime
from urllib.parse import urlparse

import pytest
from django.db import DatabaseError, connection, transaction

from compliance.consent import rules
from compliance.consent.models import ConsentRecord, ConsentState, ConsentText
from compliance.models import AuditTrailIsAppendOnly, OptOutRequest, SendingIdentity, Stream
from fbl import ingest
from fbl import services as fbl_services
from tests.fbl.test_report_actions import complaint

pytestmark = pytest.mark.django_db

URL = "/api/v1/consents"
WORDING = "Yes, send me the Acme newsletter. I can unsubscribe at any time."


def web_form(address="pat@example.com", purpose="marketing", action="grant", **changes):
    record = {
        "address": address,
        "purpose": purpose,
        "action": action,
        "basis": "consent",
        "method": "web_form",
        "evidence": {
            "collected_at": "2026-11-02T10:15:00Z",
            "ip": "192.0.2.10",
            "user_agent": "Mozilla/5.0",
            "page_url": "https://acme.example/signup",
            "form_id": "footer",
            "wording": WORDING,
            "privacy_notice_version": "2026-03",
        },
    }
    record.update(changes)
    return record


@pytest.fixture
def writer(api_client, default_tenant):
    return api_client("consent:write", "consent:read")


def state_of(client, address="pat@example.com") -> dict:
    answer = client.get(URL, {"address": address})
    assert answer.status_code == 200, answer.content
    return answer.json()


# --- the API -----------------------------------------------------------------------------------


def test_a_grant_is_recorded_with_its_evidence_and_read_back(writer):
    answer = writer.post(URL, web_form(address="Pat@Example.com"), format="json")

    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert (body["address"], body["purpose"], body["state"], body["basis"]) == (
        "pat@example.com",
        "marketing",
        "granted",
        "consent",
    )
    assert body["since"].startswith("2026-11-02T10:15:00")
    state = state_of(writer)
    assert state["purposes"] == [
        {"purpose": "marketing", "state": "granted", "basis": "consent", "since": body["since"]}
    ]
    (entry,) = state["history"]
    assert entry["method"] == "web_form" and entry["jurisdiction"] == "EU"
    assert entry["evidence"]["wording"] == WORDING
    assert entry["evidence"]["ip"] == "192.0.2.10"
    assert entry["evidence"]["page_url"] == "https://acme.example/signup"
    assert entry["evidence"]["privacy_notice_version"] == "2026-03"


def test_a_million_consents_share_one_text_per_wording(writer):
    batch = [web_form(address=f"user{i}@example.com") for i in range(50)]
    assert writer.post(URL, batch, format="json").status_code == 201
    assert ConsentText.objects.count() == 1
    assert ConsentRecord.objects.filter(text=ConsentText.objects.get()).count() == 50


def test_a_list_answers_each_records_state_in_order(writer, make_topic, default_tenant):
    make_topic(default_tenant.streams.get(slug="marketing"), "offers")
    batch = [
        web_form(address="a@example.com"),
        web_form(address="b@example.com", purpose="marketing/offers"),
        web_form(address="a@example.com", action="withdraw", evidence={}),
    ]
    answer = writer.post(URL, batch, format="json")
    assert answer.status_code == 201, answer.content
    assert [(r["address"], r["purpose"], r["state"]) for r in answer.json()] == [
        ("a@example.com", "marketing", "withdrawn"),  # the withdrawal came later
        ("b@example.com", "marketing/offers", "granted"),
        ("a@example.com", "marketing", "withdrawn"),
    ]


def test_a_record_without_the_evidence_its_method_needs_is_refused_by_name(writer):
    record = web_form()
    del record["evidence"]["ip"], record["evidence"]["wording"]
    answer = writer.post(URL, record, format="json")
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "invalid_consent"
    assert body["errors"] == [
        {"index": 0, "field": "evidence", "detail": "method web_form needs evidence: ip, wording"}
    ]
    assert not ConsentRecord.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"purpose": "nope"}, "purpose"),
        ({"purpose": "marketing/nope"}, "purpose"),
        ({"purpose": "a/b/c"}, "purpose"),
        ({"basis": "vibes"}, "basis"),
        ({"method": "carrier_pigeon"}, "method"),
        ({"action": "maybe"}, "action"),
        ({"jurisdiction": "XX"}, "jurisdiction"),
        ({"address": "not-an-address"}, "address"),
    ],
)
def test_unknown_values_are_refused_and_nothing_is_written(writer, change, field):
    batch = [web_form(address="ok@example.com"), web_form(**change)]
    answer = writer.post(URL, batch, format="json")
    assert answer.status_code == 400, answer.content
    body = answer.json()
    assert body["code"] == "invalid_consent"
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, field)]
    assert not ConsentRecord.objects.exists()


@pytest.mark.parametrize(("record", "detail"), [(None, "may not be null"), (1, "Expected a")])
def test_a_record_that_is_not_an_object_is_refused_by_index(writer, record, detail):
    answer = writer.post(URL, [web_form(), record], format="json")
    assert answer.status_code == 400, answer.content
    (error,) = answer.json()["errors"]
    assert (error["index"], error["field"]) == (1, "record")
    assert detail in error["detail"]
    assert not ConsentRecord.objects.exists()


def test_an_unknown_tenant_is_refused(writer):
    answer = writer.post(URL, web_form(tenant="nobody"), format="json")
    assert answer.status_code == 400
    assert "nobody" in answer.json()["detail"]


def test_a_list_over_ten_thousand_is_refused_whole(writer):
    answer = writer.post(URL, [web_form()] * 10_001, format="json")
    assert answer.status_code == 413
    assert not ConsentRecord.objects.exists()


def test_reading_and_writing_need_their_permissions(api_client):
    reader = api_client("consent:read")
    assert reader.post(URL, web_form(), format="json").status_code == 403
    assert api_client("consent:write").get(URL, {"address": "a@example.com"}).status_code == 403


def test_a_tenant_bound_key_writes_and_sees_only_its_own_tenant(api_client, make_tenant, writer):
    acme = make_tenant("acme")
    acme_key = api_client("consent:write", "consent:read", tenant=acme)

    assert acme_key.post(URL, web_form(tenant="default"), format="json").status_code == 403
    assert acme_key.post(URL, web_form(), format="json").status_code == 201
    assert (
        writer.post(URL, web_form(action="withdraw", evidence={}), format="json").status_code == 201
    )

    acme_view = state_of(acme_key)
    assert [p["state"] for p in acme_view["purposes"]] == ["granted"]
    assert len(acme_view["history"]) == 1
    assert acme_key.get(URL, {"address": "pat@example.com", "tenant": "default"}).status_code == 403
    assert [p["state"] for p in state_of(writer)["purposes"]] == ["withdrawn"]


# --- state from sequences of events ------------------------------------------------------------

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def event(purpose: str, action: str, minutes: int, basis: str = "consent") -> rules.Event:
    return rules.Event(
        rules.Purpose.parse(purpose), action, basis, T0 + datetime.timedelta(minutes=minutes)
    )


@pytest.mark.parametrize(
    ("events", "purpose", "expected"),
    [
        ([], "news", None),
        ([event("news", "granted", 1)], "news", "granted"),
        ([event("news", "granted", 1), event("news", "withdrawn", 2)], "news", "withdrawn"),
        ([event("news", "withdrawn", 2), event("news", "granted", 1)], "news", "withdrawn"),
        ([event("news", "withdrawn", 1), event("news", "granted", 2)], "news", "granted"),
        # A stream-wide withdrawal also withdraws each topic granted before it...
        (
            [event("news/offers", "granted", 1), event("news", "withdrawn", 2)],
            "news/offers",
            "withdrawn",
        ),
        # ...and a later topic grant stands for that topic only.
        (
            [event("news", "withdrawn", 1), event("news/offers", "granted", 2)],
            "news/offers",
            "granted",
        ),
        ([event("news", "withdrawn", 1), event("news/offers", "granted", 2)], "news", "withdrawn"),
        ([event("news/offers", "withdrawn", 1)], "news", None),
        ([event("other", "granted", 1)], "news", None),
    ],
)
def test_state_follows_the_latest_event_about_the_purpose(events, purpose, expected):
    state = rules.state_of(rules.Purpose.parse(purpose), events)
    assert (state.action if state else None) == expected


def test_an_older_record_arriving_late_does_not_override_a_newer_state(writer):
    newer = web_form(action="withdraw", evidence={"collected_at": "2026-11-05T00:00:00Z"})
    older = web_form()  # collected 2026-11-02
    writer.post(URL, newer, format="json")
    answer = writer.post(URL, older, format="json")
    assert answer.json()["state"] == "withdrawn"
    assert [p["state"] for p in state_of(writer)["purposes"]] == ["withdrawn"]
    assert ConsentRecord.objects.count() == 2  # both kept as evidence


# --- the ledger refuses change -----------------------------------------------------------------


def test_the_model_refuses_to_change_or_delete_a_record(writer):
    writer.post(URL, web_form(), format="json")
    record = ConsentRecord.objects.get()
    record.basis = "contract"
    with pytest.raises(AuditTrailIsAppendOnly):
        record.save()
    with pytest.raises(AuditTrailIsAppendOnly):
        record.delete()
    with pytest.raises(AuditTrailIsAppendOnly):
        ConsentRecord.objects.update(basis="contract")
    with pytest.raises(AuditTrailIsAppendOnly):
        ConsentRecord.objects.all().delete()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL trigger")
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE consent_consentrecord SET basis = 'contract'",
        "UPDATE consent_consentrecord SET occurred_at = now()",
        # Blanking the address alone while changing another field is not an erasure.
        "UPDATE consent_consentrecord SET address = NULL, ip = NULL, user_agent = '', "
        "page_url = '', confirmed_ip = NULL, form_id = 'x'",
        # Changing the address to another one is not an erasure either.
        "UPDATE consent_consentrecord SET address = 'other@example.com'",
        "DELETE FROM consent_consentrecord",
    ],
)
def test_the_database_refuses_to_rewrite_the_ledger(writer, statement):
    writer.post(URL, web_form(), format="json")
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert ConsentRecord.objects.get().address == "pat@example.com"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL trigger")
def test_the_database_lets_an_erasure_blank_the_personal_fields_only(writer):
    writer.post(URL, web_form(), format="json")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE consent_consentrecord SET address = NULL, ip = NULL, user_agent = '', "
            "page_url = '', confirmed_ip = NULL"
        )
    record = ConsentRecord.objects.get()
    assert (record.address, record.ip, record.user_agent) == (None, None, "")
    assert record.text.body == WORDING and record.basis == "consent"


def test_the_admin_shows_the_ledger_read_only(writer, staff_client):
    writer.post(URL, web_form(), format="json")
    record = ConsentRecord.objects.get()
    listing = staff_client.get("/admin/consent/consentrecord/", {"q": "PAT@example.com"})
    assert listing.status_code == 200
    assert "marketing" in listing.content.decode()
    assert "/admin/consent/import/" in listing.content.decode()  # the CSV upload
    assert staff_client.get("/admin/consent/consentrecord/add/").status_code == 403
    change = staff_client.post(
        f"/admin/consent/consentrecord/{record.pk}/change/", {"basis": "contract"}
    )
    assert change.status_code == 403
    assert (
        staff_client.post(
            f"/admin/consent/consentrecord/{record.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert ConsentRecord.objects.get().basis == "consent"


def test_the_admin_lists_texts_with_how_many_consents_use_each(writer, staff_client):
    writer.post(URL, [web_form(address=f"u{i}@example.com") for i in range(3)], format="json")
    page = staff_client.get("/admin/consent/consenttext/").content.decode()
    assert "Yes, send me the Acme newsletter" in page
    assert ">3<" in page


def test_the_admin_shows_an_addresss_state_per_purpose(writer, staff_client):
    writer.post(URL, web_form(), format="json")
    page = staff_client.get("/admin/consent/consentstate/", {"q": "pat@example.com"})
    assert page.status_code == 200
    assert "granted" in page.content.decode().lower()


# --- every opt-out is a withdrawal -------------------------------------------------------------


def withdrawals(address="pat@example.com") -> list[tuple[str, str]]:
    records = ConsentRecord.objects.filter(action="withdrawn", address=address)
    return sorted((r.purpose, r.method) for r in records.select_related("stream", "topic"))


def test_a_one_click_withdraws_the_links_stream(client, mint, writer):
    writer.post(URL, web_form(), format="json")
    client.post(
        urlparse(mint().url).path,
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert withdrawals() == [("marketing", "unsubscribe")]
    assert [p["state"] for p in state_of(writer)["purposes"]] == ["withdrawn"]


def test_a_topic_link_withdraws_the_topic_only(client, mint, make_topic, default_tenant):
    offers = make_topic(default_tenant.streams.get(slug="marketing"), "offers")
    client.post(
        urlparse(mint(topic=offers).url).path,
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert withdrawals() == [("marketing/offers", "unsubscribe")]


def test_all_commercial_mail_from_the_landing_page_withdraws_every_commercial_stream(
    client, mint, default_tenant
):
    Stream.objects.create(tenant=default_tenant, slug="offers", name="Offers", kind="commercial")
    client.post(
        urlparse(mint().url).path,
        {"List-Unsubscribe": "One-Click", "from": "page", "breadth": "commercial"},
    )
    # Transactional mail needs no consent and is never withdrawn by a marketing opt-out.
    assert withdrawals() == [("marketing", "unsubscribe"), ("offers", "unsubscribe")]


def test_the_preference_centre_withdraws_what_is_unticked(client, mint, make_topic, default_tenant):
    stream = default_tenant.streams.get(slug="marketing")
    make_topic(stream, "offers")
    make_topic(stream, "news")
    client.post(urlparse(mint().url).path + "/preferences", {"receive": ["stream", "topic:news"]})
    assert withdrawals() == [("marketing/offers", "preference_centre")]


def test_a_complaint_withdraws_commercial_consent(default_tenant, django_user_model):
    marketing = default_tenant.streams.get(slug="marketing")
    SendingIdentity.objects.create(
        pattern="sender.example", tenant=default_tenant, stream=marketing
    )
    message = ingest.receive(complaint("angry@example.com"), source="pipe")[0]
    fbl_services.accept(message, user=django_user_model.objects.create_user("r", is_staff=True))
    assert withdrawals("angry@example.com") == [("marketing", "complaint")]
    withdrawal = ConsentRecord.objects.get(action="withdrawn")
    opt_out = OptOutRequest.objects.get()
    assert withdrawal.cause.startswith(f"opt-out #{opt_out.pk}")
    assert withdrawal.occurred_at == opt_out.received_at


@pytest.mark.parametrize(
    ("reason", "scope", "method"),
    [("unsubscribe", "stream:marketing", "api"), ("objection", "commercial", "api")],
)
def test_api_suppressions_that_are_opt_outs_withdraw(api_client, reason, scope, method):
    client = api_client("suppression:write")
    answer = client.post(
        "/api/v1/suppressions/",
        {"address": "pat@example.com", "reason": reason, "scope": scope},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    assert withdrawals() == [("marketing", method)]


def test_a_staff_suppression_in_the_admin_withdraws(staff_client, default_tenant):
    answer = staff_client.post(
        "/admin/suppression/suppression/add/",
        {
            "address": "pat@example.com",
            "reason": "unsubscribe",
            "scope": "commercial",
            "tenant": default_tenant.pk,
            "note": "asked by phone",
        },
    )
    assert answer.status_code == 302, answer.content
    assert withdrawals() == [("marketing", "staff")]


def test_a_hard_bounce_is_not_a_withdrawal(suppress):
    suppress("pat@example.com", "hard_bounce")
    assert not ConsentRecord.objects.exists()
    assert not ConsentState.objects.exists()


@pytest.mark.django_db(transaction=True)  # the MTA pipe is another process
def test_a_mailto_unsubscribe_withdraws(mint, settings):
    from tests.unsubscribe.test_mailto import ingest, message_to

    settings.UNSUBSCRIBE_MAILTO_DOMAIN = "unsub.example.com"
    address = mint("writer@example.com").mailto
    assert ingest(message_to(address), recipient=address).returncode == 0
    assert withdrawals("writer@example.com") == [("marketing", "unsubscribe")]
