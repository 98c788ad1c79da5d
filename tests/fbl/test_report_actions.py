"""What reports do once stored: the action table, trust and the review queue, attribution,
soft-bounce thresholds, duplicates, and POST /api/v1/reports."""

from __future__ import annotations

import datetime
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from compliance.errors import ServiceError
from compliance.models import OptOutRequest, SendingIdentity, Stream
from fbl import ingest, services
from fbl.models import DailyCount, InboundMessage
from suppression import rules
from suppression.models import Suppression, SuppressionEvent
from suppression.selectors import is_suppressed
from tests.fbl.messages import ENCLOSED, arf, dsn, require_fixtures
from tests.fbl.signing import dkim_sign, key_record, new_key

pytestmark = pytest.mark.django_db

Status = InboundMessage.Status


@pytest.fixture
def streams(default_tenant):
    return (
        Stream.objects.get(tenant=default_tenant, slug="marketing"),
        Stream.objects.get(tenant=default_tenant, slug="transactional"),
    )


def receive(raw: bytes, source: str = "pipe") -> InboundMessage:
    return ingest.receive(raw, source=source)[0]


def enclosed_for(address: str, list_unsubscribe: str | None = None, sender: str = "") -> str:
    text = ENCLOSED.replace("alice@example.com", address)
    if list_unsubscribe is not None:
        text = text.replace(
            "<https://u.sender.example/u/TOKEN-ALICE>, <mailto:unsubscribe@sender.example>",
            list_unsubscribe,
        )
    if sender:
        text = text.replace("news@sender.example", sender)
    return text


def complaint(address: str, feedback_type: str = "abuse", **enclosed) -> bytes:
    return arf(
        f"Feedback-Type: {feedback_type}\nUser-Agent: ISP-FBL/1.0\nVersion: 1\n"
        f"Original-Rcpt-To: {address}\n",
        enclosed=enclosed_for(address, **enclosed),
    )


def bounce(address: str, status: str, diagnostic: str, action: str = "failed") -> bytes:
    return dsn(
        f"Final-Recipient: rfc822; {address}\nAction: {action}\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; {diagnostic}\n",
        enclosed=enclosed_for(address),
    )


def blocked(stream, address: str) -> bool:
    return is_suppressed(stream=stream, address=address).suppressed


# --- bounces act on their own ------------------------------------------------------------------


def test_a_permanent_bounce_suppresses_globally_for_every_tenant(streams, make_tenant):
    marketing, transactional = streams
    other = make_tenant("other")
    message = receive(bounce("gone@example.com", "5.1.1", "550 5.1.1 user unknown"))

    assert message.status == Status.PROCESSED
    assert message.kind == "dsn"
    assert blocked(marketing, "gone@example.com")
    assert blocked(transactional, "gone@example.com")  # a dead address stops even resets
    assert blocked(Stream.objects.get(tenant=other, slug="marketing"), "gone@example.com")
    entry = Suppression.objects.get()
    assert (entry.tenant, entry.reason, entry.origin) == (None, "hard_bounce", "provider_report")
    assert entry.evidence_id == str(message.pk)
    assert not OptOutRequest.objects.exists()  # a bounce is not an opt-out


def test_a_policy_block_is_a_reputation_signal_not_a_suppression(streams):
    marketing, _ = streams
    message = receive(
        bounce("fine@example.com", "5.7.1", "550 5.7.1 Message rejected as spam by Content Filter")
    )
    assert message.status == Status.PROCESSED
    assert "recorded" in message.note
    assert not blocked(marketing, "fine@example.com")
    assert not Suppression.objects.exists()


def test_soft_bounces_suppress_only_past_the_threshold_and_the_entry_expires(streams, settings):
    marketing, transactional = streams
    settings.SOFT_BOUNCE_THRESHOLD = 3
    settings.SOFT_BOUNCE_WINDOW_DAYS = 14
    settings.SOFT_BOUNCE_SUPPRESS_DAYS = 30
    address = "full@example.com"
    # Noon: a day's retries an hour apart stay on one calendar day whenever the test runs.
    start = (timezone.now() - datetime.timedelta(days=5)).replace(
        hour=12, minute=0, second=0, microsecond=0
    )
    for day in range(3):
        for attempt in range(2):  # a message's retries on one day count once
            raw = bounce(address, "4.2.2", f"452 4.2.2 mailbox full (day {day} try {attempt})")
            message, _ = services.store_inbound_message(raw, source="pipe")
            InboundMessage.objects.filter(pk=message.pk).update(
                received_at=start + datetime.timedelta(days=day, hours=attempt)
            )
            message.refresh_from_db()
            ingest.route(message)
        if day < 2:
            assert not blocked(marketing, address), f"suppressed after {day + 1} days"
    assert blocked(marketing, address)
    assert not blocked(transactional, address)  # soft bounces never stop transactional mail
    entry = Suppression.objects.get()
    assert entry.reason == rules.SOFT_BOUNCE and entry.tenant is None
    # The third day's first bounce crossed the line: 30 days from then (its retry may extend it).
    crossed = start + datetime.timedelta(days=2)
    assert datetime.timedelta(days=30) <= entry.expires_at - crossed
    assert entry.expires_at - crossed <= datetime.timedelta(days=30, hours=1)


def test_soft_bounces_outside_the_window_do_not_add_up(streams, settings):
    marketing, _ = streams
    settings.SOFT_BOUNCE_THRESHOLD = 2
    settings.SOFT_BOUNCE_WINDOW_DAYS = 7
    address = "sometimes@example.com"
    for days_ago in (30, 0):
        message, _ = services.store_inbound_message(
            bounce(address, "4.4.1", f"451 4.4.1 timeout ({days_ago})"), source="pipe"
        )
        InboundMessage.objects.filter(pk=message.pk).update(
            received_at=timezone.now() - datetime.timedelta(days=days_ago)
        )
        message.refresh_from_db()
        ingest.route(message)
    assert not blocked(marketing, address)


def test_the_same_report_delivered_twice_acts_once(streams):
    raw = bounce("twice@example.com", "5.1.1", "550 5.1.1 no such user")
    first = receive(raw)
    second = receive(raw)
    assert first.pk == second.pk
    second.refresh_from_db()
    assert second.times_received == 2
    assert SuppressionEvent.objects.count() == 1


# --- feedback reports: trust, review, the action table -------------------------------------------


def test_an_unsigned_complaint_waits_for_review_and_changes_nothing(streams):
    marketing, _ = streams
    message = receive(complaint("angry@example.com"))
    assert message.status == Status.PENDING_REVIEW
    assert message.feedback_type == "abuse"
    assert "waiting for staff review" in message.note
    assert message.dkim_results == "unsigned"
    assert not blocked(marketing, "angry@example.com")


def test_staff_accepting_a_complaint_suppresses_commercial_mail_and_opens_an_opt_out(
    streams, default_tenant, django_user_model
):
    marketing, transactional = streams
    SendingIdentity.objects.create(
        pattern="sender.example", tenant=default_tenant, stream=marketing
    )
    message = receive(complaint("angry@example.com"))
    reviewer = django_user_model.objects.create_user("reviewer", is_staff=True)

    services.accept(message, user=reviewer)

    message.refresh_from_db()
    assert message.status == Status.PROCESSED
    assert message.reviewed_by == reviewer
    assert blocked(marketing, "angry@example.com")
    assert not blocked(transactional, "angry@example.com")
    entry = Suppression.objects.get()
    assert (entry.tenant, entry.reason, entry.scope) == (default_tenant, "complaint", "commercial")
    opt_out = OptOutRequest.objects.get()
    assert opt_out.channel == OptOutRequest.Channel.COMPLAINT
    assert opt_out.received_at == message.received_at
    with pytest.raises(ServiceError):
        services.accept(message, user=reviewer)  # acted on once


def test_staff_rejecting_a_report_keeps_it_and_acts_on_nothing(streams, django_user_model):
    marketing, _ = streams
    message = receive(complaint("spoofed@example.com"))
    reviewer = django_user_model.objects.create_user("reviewer", is_staff=True)
    services.reject(message, user=reviewer, note="forged")
    message.refresh_from_db()
    assert message.status == Status.REJECTED
    assert "forged" in message.note
    assert not blocked(marketing, "spoofed@example.com")


def accepted(raw: bytes, user) -> InboundMessage:
    return services.accept(receive(raw), user=user)


@pytest.mark.parametrize("feedback_type", ["not-spam", "auth-failure", "virus", "other"])
def test_other_feedback_types_are_stored_and_counted_only(
    streams, django_user_model, feedback_type
):
    marketing, _ = streams
    reviewer = django_user_model.objects.create_user("reviewer", is_staff=True)
    message = accepted(complaint("someone@example.com", feedback_type), reviewer)
    assert message.status == Status.PROCESSED
    assert message.feedback_type == feedback_type
    assert not blocked(marketing, "someone@example.com")
    assert not Suppression.objects.exists()


def test_an_opt_out_report_is_an_unsubscribe(streams, django_user_model):
    marketing, _ = streams
    reviewer = django_user_model.objects.create_user("reviewer", is_staff=True)
    accepted(complaint("leaving@example.com", "opt-out"), reviewer)
    entry = Suppression.objects.get()
    assert entry.reason == "unsubscribe"
    assert blocked(marketing, "leaving@example.com")
    assert OptOutRequest.objects.count() == 1


def test_our_token_in_the_enclosed_message_names_the_tenant_and_the_recipient(
    streams, mint, make_tenant, django_user_model
):
    marketing, _ = streams
    link = mint("token-owner@example.com", campaign="spring")
    other_tenant_marketing = Stream.objects.get(tenant=make_tenant("other"), slug="marketing")
    # The report names a different, provider-rewritten address; our token names the real one.
    raw = arf(
        "Feedback-Type: abuse\nVersion: 1\nOriginal-Rcpt-To: rewritten@isp.example\n",
        enclosed=enclosed_for("rewritten@isp.example", list_unsubscribe=link.list_unsubscribe),
    )
    reviewer = django_user_model.objects.create_user("reviewer", is_staff=True)
    message = accepted(raw, reviewer)

    assert message.parsed["recipients"][0]["found_by"] == "token"
    assert blocked(marketing, "token-owner@example.com")
    assert not blocked(marketing, "rewritten@isp.example")
    assert not blocked(other_tenant_marketing, "token-owner@example.com")


def test_a_complaint_nobody_can_attribute_is_honoured_for_every_tenant(
    streams, make_tenant, django_user_model
):
    other_marketing = Stream.objects.get(tenant=make_tenant("other"), slug="marketing")
    reviewer = django_user_model.objects.create_user("reviewer", is_staff=True)
    accepted(complaint("unknown@example.com", sender="news@stranger.example"), reviewer)
    entry = Suppression.objects.get()
    assert entry.tenant is None and entry.scope == "commercial"
    assert blocked(other_marketing, "unknown@example.com")


def test_a_redacted_recipient_is_stored_but_suppresses_nothing(streams, django_user_model):
    reviewer = django_user_model.objects.create_user("reviewer", is_staff=True)
    raw = arf(
        "Feedback-Type: abuse\nVersion: 1\nOriginal-Rcpt-To: redacted@example.net\n",
        enclosed=enclosed_for("redacted@example.net"),
    )
    message = accepted(raw, reviewer)
    assert message.status == Status.PROCESSED
    assert "no recipient" in message.note
    assert not Suppression.objects.exists()


def test_unrecognised_mail_is_kept_for_review(db):
    message = receive(b"Subject: hello\r\n\r\nJust saying hi.\r\n")
    assert message.status == Status.UNRECOGNISED
    assert message.raw() == b"Subject: hello\r\n\r\nJust saying hi.\r\n"


def test_an_auto_reply_is_ignored(db):
    raw = (
        b"From: Bob <bob@example.com>\r\nTo: news@sender.example\r\n"
        b"Auto-Submitted: auto-replied\r\nSubject: Out of office\r\n\r\nBack Monday.\r\n"
    )
    message = receive(raw)
    assert message.status == Status.IGNORED
    assert not Suppression.objects.exists()


# --- the review queue in the admin --------------------------------------------------------------


def test_staff_accept_a_pending_report_from_the_admin(staff_client, streams):
    marketing, _ = streams
    message = receive(complaint("queued@example.com"))
    listing = staff_client.get("/admin/fbl/inboundmessage/?status__exact=pending_review")
    assert listing.status_code == 200
    assert "Untrusted report: waiting for staff review" in listing.content.decode()
    response = staff_client.post(
        "/admin/fbl/inboundmessage/",
        {"action": "accept_reports", "_selected_action": [message.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Accepted 1 report" in response.content.decode()
    assert blocked(marketing, "queued@example.com")
    event = SuppressionEvent.objects.get()
    assert event.actor_label == "staff"


# --- POST /api/v1/reports -------------------------------------------------------------------------


def post_report(client, raw: bytes, content_type: str = "message/rfc822"):
    return client.post("/api/v1/reports", data=raw, content_type=content_type)


def test_a_report_posted_over_http_is_stored_and_acted_on(api_client, streams):
    marketing, _ = streams
    client = api_client("reports:write")
    raw = bounce("http-gone@example.com", "5.1.1", "550 5.1.1 user unknown")
    response = post_report(client, raw)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "dsn" and body["status"] == "processed" and not body["duplicate"]
    assert InboundMessage.objects.get(pk=body["id"]).source == "http"
    assert blocked(marketing, "http-gone@example.com")

    again = post_report(client, raw)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True


def test_the_reports_endpoint_refuses_bad_requests(api_client, db):
    assert post_report(api_client("suppression:read"), b"Subject: x\r\n\r\n").status_code == 403
    client = api_client("reports:write")
    empty = post_report(client, b"")
    assert empty.status_code == 400
    assert "raw message" in empty.json()["detail"]
    wrong_type = client.post("/api/v1/reports", data={"a": 1}, format="json")
    assert wrong_type.status_code == 415
    assert not InboundMessage.objects.exists()


# --- trusted reports act on their own (a real DKIM key in a real DNS server) ---------------------

FBL_DOMAIN = "fbl.isp.example"


@pytest.fixture(scope="module")
def provider_key():
    return new_key()


@pytest.fixture
def feedback_loop(dns_server, provider_key, settings):
    """A configured feedback loop whose key is published in a DNS server on loopback."""
    dns_server.set_txt(f"s1._domainkey.{FBL_DOMAIN}", key_record(provider_key))
    settings.FBL_SENDER_DOMAINS = ["isp.example"]
    settings.DKIM_NAMESERVERS = [dns_server.nameserver]
    settings.DKIM_DNS_TIMEOUT = 1.0
    services.reports._resolver.cache_clear()
    return dns_server


def test_a_complaint_signed_by_a_configured_feedback_loop_acts_at_once(
    feedback_loop, provider_key, streams, default_tenant
):
    marketing, transactional = streams
    SendingIdentity.objects.create(
        pattern="news@sender.example", tenant=default_tenant, stream=marketing
    )
    raw = dkim_sign(complaint("trusted@example.com"), provider_key, domain=FBL_DOMAIN)

    message = receive(raw)

    assert message.status == Status.PROCESSED, message.note
    assert message.dkim_domain == FBL_DOMAIN
    assert blocked(marketing, "trusted@example.com")
    assert not blocked(transactional, "trusted@example.com")
    counted = DailyCount.objects.get()
    assert (counted.tenant_id, counted.stream_id, counted.complaints) == (
        default_tenant.pk,
        marketing.pk,
        1,
    )


def test_a_signature_of_another_domain_or_a_forged_one_waits_for_review(
    feedback_loop, provider_key, streams
):
    marketing, _ = streams
    elsewhere = dkim_sign(complaint("a@example.com"), provider_key, domain="fbl.other.example")
    forged = dkim_sign(complaint("b@example.com"), provider_key, domain=FBL_DOMAIN).replace(
        b"Original-Rcpt-To: b@example.com", b"Original-Rcpt-To: c@example.com"
    )
    for raw in (elsewhere, forged):
        message = receive(raw)
        assert message.status == Status.PENDING_REVIEW
        assert message.dkim_domain == ""
    assert "body hash did not verify" in InboundMessage.objects.get(pk=message.pk).dkim_results
    assert not Suppression.objects.exists()
    assert not DailyCount.objects.exists()  # an untrusted report is not counted until accepted


def test_a_dns_outage_leaves_the_report_for_review(feedback_loop, provider_key, streams):
    feedback_loop.stop()
    message = receive(dkim_sign(complaint("later@example.com"), provider_key, domain=FBL_DOMAIN))
    assert message.status == Status.PENDING_REVIEW
    assert "temperror" in message.dkim_results
    assert not Suppression.objects.exists()


# --- what processing cannot handle is kept, never retried for ever ------------------------------


def test_a_bounce_whose_text_holds_a_nul_character_is_processed(streams):
    # Quoted-printable "=00" in a real Office 365 bounce decodes to NUL, which PostgreSQL
    # refuses in text and jsonb.
    raw = (require_fixtures() / "dsn" / "lhost-office365-01.eml").read_bytes()
    message = receive(raw)
    assert message.status == Status.PROCESSED, message.note
    assert "\x00" not in str(message.parsed)


def test_a_message_that_fails_processing_is_kept_for_review(monkeypatch, db):
    def broken(message):
        raise RuntimeError("a parser bug")

    monkeypatch.setattr(services, "act_on_report", broken)
    message = receive(bounce("kept@example.com", "5.1.1", "550 5.1.1 unknown"))
    assert message.status == Status.UNRECOGNISED
    assert message.note == "processing failed: RuntimeError: a parser bug"
    assert not Suppression.objects.exists()


# --- hostile mail is stored and acted on within limits ------------------------------------------


def test_a_complaint_whose_feedback_type_trails_junk_is_acted_on_as_a_complaint(
    feedback_loop, provider_key, streams
):
    marketing, _ = streams
    raw = dkim_sign(
        complaint("junk-type@example.com", "abuse " + "x" * 300), provider_key, domain=FBL_DOMAIN
    )
    message = receive(raw)
    assert message.status == Status.PROCESSED, message.note
    assert message.feedback_type == "abuse"
    assert blocked(marketing, "junk-type@example.com")
    assert Suppression.objects.get().reason == "complaint"
    assert DailyCount.objects.get().complaints == 1


def test_an_unknown_over_long_feedback_type_is_stored_cut_and_counted_as_other_feedback(
    feedback_loop, provider_key, streams
):
    marketing, _ = streams
    raw = dkim_sign(complaint("long-type@example.com", "z" * 300), provider_key, domain=FBL_DOMAIN)
    message = receive(raw)
    assert message.status == Status.PROCESSED, message.note
    assert message.feedback_type == "z" * 40
    assert "Feedback-Type longer than 40 characters: cut" in message.parsed["problems"]
    counted = DailyCount.objects.get()
    assert (counted.complaints, counted.other_feedback) == (0, 1)
    assert not blocked(marketing, "long-type@example.com")


def deeply_nested(levels: int) -> bytes:
    opening = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(levels)
    )
    closing = "".join(f"--b{i}--\r\n" for i in reversed(range(levels)))
    return (
        "From: someone@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
        f"{opening}Content-Type: text/plain\r\n\r\nhello\r\n{closing}"
    ).encode()


def test_mime_nested_thousands_of_levels_deep_posted_over_http_is_stored_for_review(api_client, db):
    raw = deeply_nested(5000)
    response = post_report(api_client("reports:write"), raw)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["status"]) == ("unknown", "unrecognised")
    assert "nested more than 64 levels deep" in body["note"]
    assert InboundMessage.objects.get(pk=body["id"]).raw() == raw


def test_a_subject_of_200000_encoded_words_piped_in_is_stored_with_the_limit_noted(monkeypatch, db):
    raw = (
        b"From: someone@example.com\r\nSubject: "
        + b" ".join([b"=?utf-8?q?caf=C3=A9?="] * 200_000)
        + b"\r\n\r\nhello\r\n"
    )
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw)))
    call_command("ingest_mail", stdout=io.StringIO())
    message = InboundMessage.objects.get()
    assert message.raw() == raw
    assert message.status == Status.UNRECOGNISED
    assert "more than 256 RFC 2047 encoded words" in message.note
