"""Access requests (GDPR Art. 15): once verified, everything held about the address, as JSON from
the API and the requester's expiring link, and as a ZIP of CSV files from the admin; nothing at
all before the requester has shown control of the address."""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
import zipfile
from urllib.parse import urlparse

import pytest
from django.core import mail

from compliance.dsr import access, services
from compliance.dsr.models import DataSubjectRequest
from compliance.models import AuditEvent
from fbl import ingest
from suppression import services as suppression
from tests.fbl.messages import ENCLOSED, arf

pytestmark = pytest.mark.django_db(transaction=True)  # the mails go out on commit

URL = "/api/v1/data-subject-requests"
PAT = "pat@example.com"


@pytest.fixture
def dsr_client(api_client, default_tenant):
    return api_client("dsr:write", "dsr:read")


def link_in(message, suffix: str = "") -> str:
    found = re.search(rf"https?://\S+/dsr/[\w-]+{suffix}(?=\s)", message.body).group(0)
    return urlparse(found).path


def open_request(api, kind: str = "access", address: str = PAT) -> int:
    answer = api.post(URL, {"address": address, "kind": kind}, format="json")
    assert answer.status_code == 201, answer.content
    return answer.json()["id"]


def verify(client, request_id: int) -> None:
    """Press the button behind the verification link mailed for this request."""
    address = DataSubjectRequest.objects.get(pk=request_id).address
    for message in mail.outbox:
        if message.to == [address] and "/export" not in message.body:
            path = link_in(message)
            if services.find_by_token(path.rsplit("/", 1)[1]).pk == request_id:
                assert client.post(path).status_code == 200
                return
    raise AssertionError(f"no verification mail for request #{request_id}")


def export_mail():
    (message,) = [m for m in mail.outbox if "/export" in m.body]
    return message


def complaint_about(address: str) -> bytes:
    return arf(
        f"Feedback-Type: abuse\nUser-Agent: ISP-FBL/1.0\nVersion: 1\nOriginal-Rcpt-To: {address}\n",
        enclosed=ENCLOSED.replace("alice@example.com", address),
    )


@pytest.fixture
def everything_about_pat(api_client, default_tenant, suppress, mint, client):
    """One record of each kind about PAT, each made the way the service makes it."""
    consents = api_client("consent:write")
    granted = consents.post(
        "/api/v1/consents",
        {
            "address": PAT,
            "purpose": "marketing",
            "action": "grant",
            "basis": "consent",
            "method": "web_form",
            "evidence": {
                "collected_at": "2026-03-01T10:00:00Z",
                "ip": "192.0.2.10",
                "page_url": "https://acme.example/signup",
                "wording": "Send me the monthly newsletter.",
                "user_agent": "Mozilla/5.0",
            },
        },
        format="json",
    )
    assert granted.status_code == 201, granted.content
    entry = suppress(PAT, "manual", scope="global")
    suppression.lift(suppression=entry, note="asked us to write again")
    suppress(PAT, "manual", scope="global")
    one_click = client.post(urlparse(mint(PAT).url).path, {"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    message, _ = ingest.receive(complaint_about(PAT), source="pipe")
    return message


def test_the_export_holds_every_kind_of_record(dsr_client, client, everything_about_pat):
    earlier = open_request(dsr_client, kind="objection")
    request_id = open_request(dsr_client)
    verify(client, request_id)

    answer = dsr_client.get(f"{URL}/{request_id}/export")
    assert answer.status_code == 200, answer.content
    export = answer.json()

    assert export["address"] == PAT
    granted = next(c for c in export["consents"] if c["action"] == "granted")
    assert granted["evidence"]["wording"] == "Send me the monthly newsletter."
    assert granted["evidence"]["ip"] == "192.0.2.10"
    assert {s["purpose"] for s in export["consent_states"]} == {"marketing"}

    manual = next(s for s in export["suppressions"] if s["reason"] == "manual")
    assert [e["action"] for e in manual["history"]] == ["add", "lift", "readd"]
    assert manual["history"][1]["note"] == "asked us to write again"

    (one_click,) = [o for o in export["opt_outs"] if o["channel"] == "one_click"]
    assert one_click["received_at"] and one_click["applied_at"]
    (unsubscribe,) = export["unsubscribe_requests"]
    assert (unsubscribe["channel"], unsubscribe["stream"]) == ("one_click", "marketing")

    (report,) = export["reports"]
    assert report["id"] == everything_about_pat.pk
    assert report["feedback_type"] == "abuse"
    assert f"Original-Rcpt-To: {PAT}" in report["excerpt"]
    assert "This is an email abuse report." not in report["excerpt"]  # only the lines near it

    assert [r["id"] for r in export["requests"]] == [earlier, request_id]
    assert "verified" in [s["step"] for s in export["requests"][1]["steps"]]


def test_nothing_is_released_before_verification(dsr_client, client, everything_about_pat):
    request_id = open_request(dsr_client)
    answer = dsr_client.get(f"{URL}/{request_id}/export")
    assert answer.status_code == 409
    assert answer.json()["code"] == "not_verified"
    assert PAT not in answer.content.decode()
    assert not [m for m in mail.outbox if "/export" in m.body]
    assert not AuditEvent.objects.filter(action="access").exists()


def test_only_an_access_request_has_an_export(dsr_client, client):
    request_id = open_request(dsr_client, kind="objection")
    verify(client, request_id)
    answer = dsr_client.get(f"{URL}/{request_id}/export")
    assert answer.status_code == 409
    assert answer.json()["code"] == "not_access"


def test_the_requester_downloads_by_the_mailed_link_until_it_expires(
    dsr_client, client, everything_about_pat, monkeypatch
):
    request_id = open_request(dsr_client)
    verify(client, request_id)
    request = DataSubjectRequest.objects.get(pk=request_id)
    assert request.status == "fulfilled"
    message = export_mail()
    assert message.to == [PAT]
    path = link_in(message, "/export")
    token = path.split("/")[2]
    assert token not in request.export_token_hash  # only its hash is kept

    download = client.get(path)
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment;")
    export = json.loads(download.content)
    assert export["request"] == request_id and export["reports"]

    bundle = zipfile.ZipFile(io.BytesIO(client.get(path + "?format=csv").content))
    assert "suppression_history.csv" in bundle.namelist()

    later = request.export_expires_at + datetime.timedelta(seconds=1)
    monkeypatch.setattr(access, "_now", lambda: later)
    expired = client.get(path)
    assert expired.status_code == 410
    assert PAT not in expired.content.decode()
    assert client.get("/dsr/not-a-real-token/export").status_code == 404


def test_every_export_is_in_the_audit_trail_with_who_and_where(
    dsr_client, client, staff_client, everything_about_pat
):
    request_id = open_request(dsr_client)
    verify(client, request_id)
    dsr_client.get(f"{URL}/{request_id}/export", REMOTE_ADDR="198.51.100.7")
    client.get(link_in(export_mail(), "/export"), REMOTE_ADDR="203.0.113.9")
    staff_client.get(f"/admin/dsr/datasubjectrequest/{request_id}/export.zip")

    views = AuditEvent.objects.filter(action="access").order_by("id")
    assert [(v.via, v.remote_addr) for v in views] == [
        ("api", "198.51.100.7"),
        ("web", "203.0.113.9"),
        ("admin", "127.0.0.1"),
    ]
    assert views[2].actor_label == "staff"
    steps = DataSubjectRequest.objects.get(pk=request_id).steps
    assert steps.filter(step="exported").count() == 1  # the requester's download


def test_the_admin_gives_one_csv_per_kind_for_a_verified_access_request(
    dsr_client, client, staff_client, everything_about_pat
):
    waiting = open_request(dsr_client)
    page = staff_client.get(f"/admin/dsr/datasubjectrequest/{waiting}/change/")
    assert "Download CSV bundle" not in page.content.decode()
    refused = staff_client.get(f"/admin/dsr/datasubjectrequest/{waiting}/export.zip")
    assert refused.status_code == 302

    verify(client, waiting)
    page = staff_client.get(f"/admin/dsr/datasubjectrequest/{waiting}/change/")
    assert "Download CSV bundle" in page.content.decode()
    answer = staff_client.get(f"/admin/dsr/datasubjectrequest/{waiting}/export.zip")
    assert answer["Content-Type"] == "application/zip"
    bundle = zipfile.ZipFile(io.BytesIO(answer.content))
    assert set(bundle.namelist()) == {
        "consents.csv",
        "consent_states.csv",
        "suppressions.csv",
        "suppression_history.csv",
        "opt_outs.csv",
        "unsubscribe_requests.csv",
        "reports.csv",
        "requests.csv",
        "request_steps.csv",
    }
    consents = list(csv.DictReader(io.StringIO(bundle.read("consents.csv").decode("utf-8-sig"))))
    assert consents[0]["evidence_wording"] == "Send me the monthly newsletter."
    history = bundle.read("suppression_history.csv").decode("utf-8-sig")
    assert "asked us to write again" in history


def test_a_tenant_sees_only_its_own(api_client, make_tenant, dsr_client, client, suppress):
    acme = make_tenant("acme")
    acme_api = api_client("dsr:write", "dsr:read", tenant=acme)
    suppress(PAT, "manual", scope="global")  # the default tenant's entry
    suppress(PAT, "manual", scope="global", tenant=acme)
    operator_wide = open_request(dsr_client)
    own = open_request(acme_api)
    verify(client, operator_wide)
    verify(client, own)

    export = acme_api.get(f"{URL}/{own}/export").json()
    assert [s["tenant"] for s in export["suppressions"]] == ["acme"]
    assert [r["id"] for r in export["requests"]] == [own]
    assert acme_api.get(f"{URL}/{operator_wide}/export").status_code == 403

    everything = dsr_client.get(f"{URL}/{operator_wide}/export").json()
    assert {s["tenant"] for s in everything["suppressions"]} == {"default", "acme"}


def test_an_excerpt_keeps_the_lines_around_the_address_only():
    raw = "\n".join(f"line {n}" for n in range(100)).replace("line 50", "To: Pat@Example.com")
    assert access.excerpt(raw.encode(), PAT).splitlines() == [
        "line 48",
        "line 49",
        "To: Pat@Example.com",
        "line 51",
        "line 52",
    ]


def test_a_german_requester_gets_the_link_in_german(dsr_client, client):
    request_id = open_request(dsr_client)
    client.post(link_in(mail.outbox[0]), HTTP_ACCEPT_LANGUAGE="de")
    message = export_mail()
    assert message.subject == "Ihre Daten stehen zum Download bereit"
    assert "Die Links sind gültig bis" in message.body
    assert client.get(link_in(message, "/export")).json()["request"] == request_id
