"""Data-subject requests: opened by API, verified by the requester's click or by staff, due one
calendar month after receipt, extendable by two, and an objection carried out for good."""

from __future__ import annotations

import datetime
import re
from urllib.parse import urlparse

import pytest
from django.core import mail

from compliance import deadlines
from compliance.consent.models import ConsentRecord
from compliance.dsr import services
from compliance.dsr.models import DataSubjectRequest
from suppression import selectors
from suppression.models import Suppression, SuppressionEvent

pytestmark = pytest.mark.django_db(transaction=True)  # the verification mail goes out on commit

URL = "/api/v1/data-subject-requests"


@pytest.fixture
def dsr_client(api_client, default_tenant):
    return api_client("dsr:write", "dsr:read")


def link_in(message) -> str:
    return urlparse(re.search(r"https?://\S+/dsr/\S+", message.body).group(0)).path


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (datetime.datetime(2026, 3, 10, 9), datetime.date(2026, 4, 10)),
        (datetime.datetime(2026, 1, 31, 9), datetime.date(2026, 2, 28)),
        (datetime.datetime(2028, 1, 31, 9), datetime.date(2028, 2, 29)),
        (datetime.datetime(2026, 12, 15, 9), datetime.date(2027, 1, 15)),
    ],
)
def test_a_request_is_due_one_calendar_month_after_receipt(received, due):
    assert deadlines.dsr_due(received) == due


def test_an_extension_adds_up_to_two_months():
    received = datetime.datetime(2026, 1, 31, 9)
    assert deadlines.dsr_due(received, extended_by=2) == datetime.date(2026, 4, 30)
    with pytest.raises(ValueError):
        deadlines.dsr_due(received, extended_by=3)


def test_the_api_opens_a_request_and_mails_a_verification_link(dsr_client):
    answer = dsr_client.post(URL, {"address": "Pat@Example.com", "kind": "access"}, format="json")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert set(body) == {"id", "status", "due"}
    assert body["status"] == "awaiting_verification"
    (message,) = mail.outbox
    assert message.to == ["pat@example.com"]
    assert link_in(message).startswith("/dsr/")
    detail = dsr_client.get(f"{URL}/{body['id']}").json()
    assert [s["step"] for s in detail["history"]] == ["received", "verification_sent"]
    assert detail["tenant"] is None  # every tenant of the operator


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"address": "pat@example.com", "kind": "delete-everything"}, 400),
        ({"address": "pat@example.com", "kind": "access", "tenant": "nobody"}, 400),
        ({"address": "not an address", "kind": "access"}, 400),
    ],
)
def test_bad_requests_are_refused(dsr_client, body, status):
    assert dsr_client.post(URL, body, format="json").status_code == status
    assert not DataSubjectRequest.objects.exists()


def test_a_tenant_bound_key_sees_only_its_tenants_requests(api_client, make_tenant, dsr_client):
    acme = make_tenant("acme")
    acme_client = api_client("dsr:write", "dsr:read", tenant=acme)
    other = dsr_client.post(URL, {"address": "a@example.com", "kind": "access"}, format="json")
    own = acme_client.post(URL, {"address": "a@example.com", "kind": "access"}, format="json")
    assert DataSubjectRequest.objects.get(pk=own.json()["id"]).tenant == acme
    assert acme_client.get(f"{URL}/{own.json()['id']}").status_code == 200
    assert acme_client.get(f"{URL}/{other.json()['id']}").status_code == 403
    assert dsr_client.get(f"{URL}/999999").status_code == 404


def test_the_link_shows_a_button_and_only_the_post_verifies_once(dsr_client, client):
    body = {"address": "pat@example.com", "kind": "rectification"}  # staff carry it out
    dsr_client.post(URL, body, format="json")
    path = link_in(mail.outbox[0])
    page = client.get(path)
    assert page.status_code == 200 and "<button" in page.content.decode()
    assert DataSubjectRequest.objects.get().status == "awaiting_verification"
    assert client.post(path).status_code == 200
    request = DataSubjectRequest.objects.get()
    assert request.verified_at is not None
    again = client.post(path)
    assert "confirmed before" in again.content.decode()
    assert request.steps.filter(step="verified").count() == 1


def test_a_tampered_link_gets_a_4xx_page(client):
    page = client.post("/dsr/not-a-real-token")
    assert page.status_code == 404
    assert "not valid" in page.content.decode()


def test_an_objection_stops_all_commercial_mail_for_good(dsr_client, client, default_tenant):
    dsr_client.post(URL, {"address": "pat@example.com", "kind": "objection"}, format="json")
    client.post(link_in(mail.outbox[0]))

    request = DataSubjectRequest.objects.get()
    assert request.status == "fulfilled"
    entry = Suppression.objects.get()
    assert (entry.reason, entry.scope, entry.tenant) == ("objection", "commercial", default_tenant)
    marketing = default_tenant.streams.get(slug="marketing")
    transactional = default_tenant.streams.get(slug="transactional")
    assert selectors.is_suppressed(stream=marketing, address="pat@example.com").suppressed
    assert not selectors.is_suppressed(stream=transactional, address="pat@example.com").suppressed
    assert ConsentRecord.objects.filter(action="withdrawn").count() == 1


def test_an_api_key_can_never_lift_an_objection(dsr_client, client, api_client):
    dsr_client.post(URL, {"address": "pat@example.com", "kind": "objection"}, format="json")
    client.post(link_in(mail.outbox[0]))
    entry = Suppression.objects.get()
    writer = api_client("suppression:write", "suppression:read")
    answer = writer.delete(f"/api/v1/suppressions/{entry.pk}/", {"reason": "oops"}, format="json")
    assert answer.status_code == 403
    assert Suppression.objects.get().lifted_at is None


def test_staff_verify_extend_and_refuse_with_reasons(dsr_client, django_user_model):
    body = {"address": "pat@example.com", "kind": "rectification"}
    answer = dsr_client.post(URL, body, format="json")
    request = DataSubjectRequest.objects.get(pk=answer.json()["id"])
    staff = django_user_model.objects.create_user("officer", is_staff=True)
    with pytest.raises(services.ServiceError):
        services.verify_by_staff(request, user=staff, note="")
    services.verify_by_staff(request, user=staff, note="called back on the number on file")
    services.extend(request, months=2, reason="many systems to check")
    with pytest.raises(services.ServiceError):
        services.extend(request, months=1, reason="again")
    request.refresh_from_db()
    assert request.due == deadlines.dsr_due(request.received_at, extended_by=2)
    services.refuse(request, reason="manifestly unfounded")
    request.refresh_from_db()
    assert (request.status, request.status_reason) == ("refused", "manifestly unfounded")
    assert [s.step for s in request.steps.all()] == [
        "received",
        "verification_sent",
        "verified",
        "extended",
        "refused",
    ]


def test_unverified_requests_expire(dsr_client, monkeypatch):
    dsr_client.post(URL, {"address": "pat@example.com", "kind": "access"}, format="json")
    later = services._now() + datetime.timedelta(days=15)
    monkeypatch.setattr(services, "_now", lambda: later)
    assert services.expire_unverified() == 1
    assert DataSubjectRequest.objects.get().status == "expired"


def test_an_objection_carried_out_twice_is_carried_out_once(default_tenant, monkeypatch):
    # The task redelivered, or the sweep holding a copy loaded before the task carried it out.
    monkeypatch.setattr(services, "_schedule", lambda request_id: None)
    request = services.open_request(address="pat@example.com", kind="objection", tenant=None)
    services.verify_by_staff(request, user=None, note="identity shown at the desk")
    first, second = (DataSubjectRequest.objects.get(pk=request.pk) for _ in range(2))

    services.carry_out(first)
    services.carry_out(second)

    request.refresh_from_db()
    assert request.status == "fulfilled"
    assert request.steps.filter(step="fulfilled").count() == 1
    assert SuppressionEvent.objects.filter(reason="objection").count() == 1
    assert ConsentRecord.objects.filter(action="withdrawn").count() == 1
