"""Relay and ESP events end to end: KumoMTA log records posted to POST /api/v1/events/kumomta
and ESP tracking webhooks through django-anymail, down to the suppression list."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime

import pytest
from anymail.signals import AnymailTrackingEvent

from compliance.models import Stream
from fbl.models import DailyCount, RelayEvent
from fbl.sources.anymail import source_event
from suppression.models import Suppression
from suppression.selectors import is_suppressed
from tests.fbl.test_kumomta import DELIVERY, FEEDBACK, bounce, record, response

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/kumomta"


@pytest.fixture
def streams(default_tenant):
    return (
        Stream.objects.get(tenant=default_tenant, slug="marketing"),
        Stream.objects.get(tenant=default_tenant, slug="transactional"),
    )


@pytest.fixture
def relay(api_client):
    return api_client("reports:write")


def post(client, body):
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def blocked(stream, address: str) -> bool:
    return is_suppressed(stream=stream, address=address).suppressed


def hard_bounce(address="gone@example.com", **changes):
    return bounce(
        recipient=address,
        meta={"tenant": "default", "stream": "marketing", "campaign": "spring-sale"},
        **changes,
    )


def transient_failure(address="full@example.com", attempt=1):
    return record(
        type="TransientFailure",
        recipient=address,
        num_attempts=attempt,
        timestamp=1678069691 + attempt * 3600,
        response=response(452, "4.2.2", "The email account that you tried to reach is over quota."),
        meta={"tenant": "default", "stream": "marketing"},
    )


def abuse_report(address="annoyed@example.com"):
    out = copy.deepcopy(FEEDBACK)
    out["feedback_report"]["supplemental_trace"] = {"recipient": address}
    return out


# --- POST /api/v1/events/kumomta -----------------------------------------------------------------


def test_hard_bounce_suppresses_globally(relay, streams, make_tenant):
    marketing, transactional = streams
    other = Stream.objects.get(tenant=make_tenant("other"), slug="marketing")

    answer = post(relay, hard_bounce())

    assert answer.status_code == 200, answer.content
    assert answer.json() == {"received": 1, "events": 1, "outcomes": {"suppressed": 1}}
    assert blocked(marketing, "gone@example.com")
    assert blocked(transactional, "gone@example.com")  # a dead address stops even resets
    assert blocked(other, "gone@example.com")
    entry = Suppression.objects.get()
    assert (entry.reason, entry.origin, entry.tenant) == ("hard_bounce", "relay", None)
    stored = RelayEvent.objects.get()
    assert (stored.source, stored.kind, stored.outcome) == ("kumomta", "bounce", "suppressed")
    assert entry.evidence_id == str(stored.pk)
    assert stored.record["response"]["content"].startswith("The email account")


def test_policy_bounce_does_not_suppress(relay, streams):
    marketing, _ = streams
    answer = post(relay, hard_bounce(response=response(550, "5.7.1", "no thanks")))
    assert answer.status_code == 200
    assert "suppressed" not in answer.json()["outcomes"]
    assert not blocked(marketing, "gone@example.com")


def test_transient_failure_alone_does_not_suppress(relay, streams):
    marketing, transactional = streams
    answer = post(relay, transient_failure())
    assert answer.status_code == 200, answer.content
    assert answer.json()["outcomes"] == {"recorded": 1}
    assert not blocked(marketing, "full@example.com")
    assert not blocked(transactional, "full@example.com")
    assert not Suppression.objects.exists()


def test_feedback_abuse_report_suppresses_commercial_mail_only(relay, streams):
    marketing, transactional = streams
    answer = post(relay, abuse_report("annoyed@example.com"))
    assert answer.status_code == 200, answer.content
    assert answer.json()["outcomes"] == {"suppressed": 1}
    assert blocked(marketing, "annoyed@example.com")
    assert not blocked(transactional, "annoyed@example.com")  # a complaint never stops resets
    assert Suppression.objects.get().reason == "complaint"


def test_an_untagged_feedback_record_is_attributed_by_our_token(relay, streams, mint, make_tenant):
    marketing, _ = streams
    other_marketing = Stream.objects.get(tenant=make_tenant("other"), slug="marketing")
    link = mint("token-holder@example.com")
    record = copy.deepcopy(FEEDBACK)
    report = record["feedback_report"]
    report.pop("supplemental_trace")
    report["original_message"] = (
        f"List-Unsubscribe: {link.list_unsubscribe}\n" + (report["original_message"])
    )
    answer = post(relay, record)
    assert answer.status_code == 200, answer.content
    entry = Suppression.objects.get()
    assert entry.tenant == marketing.tenant  # not every tenant's: the token names the sender
    assert blocked(marketing, "token-holder@example.com")
    assert not blocked(other_marketing, "token-holder@example.com")


def test_feedback_enclosing_a_large_original_message_is_taken(relay, streams):
    marketing, _ = streams
    report = abuse_report("big@example.com")
    original = report["feedback_report"]["original_message"]
    report["feedback_report"]["original_message"] = original + "Spam Spam Spam\n" * 250_000
    body = json.dumps(report)
    assert len(body) > 3_000_000  # over Django's 2.5 MB form-data default
    answer = relay.post(URL, data=body, content_type="application/json")
    assert answer.status_code == 200, answer.content[:300]
    assert blocked(marketing, "big@example.com")


def test_a_record_with_nul_characters_is_stored(relay, streams):
    # JSON allows "\u0000"; PostgreSQL text and jsonb do not.
    marketing, _ = streams
    reply = response(550, "5.1.1", "user unknown\x00", "RCPT TO:<gone@example.com>\r\n")
    answer = post(relay, hard_bounce(response=reply, headers={"Subject": "hi\x00"}))
    assert answer.status_code == 200, answer.content
    assert blocked(marketing, "gone@example.com")
    assert RelayEvent.objects.get().record["response"]["content"] == "user unknown\ufffd"


def test_delivery_is_counted_for_complaint_rates(relay, streams):
    answer = post(relay, record(DELIVERY, meta={"tenant": "default", "stream": "marketing"}))
    assert answer.status_code == 200
    assert answer.json()["outcomes"] == {"counted": 1}
    count = DailyCount.objects.get()
    assert (count.deliveries, count.stream.slug) == (1, "marketing")
    assert not Suppression.objects.exists()


def test_a_repeated_record_is_a_duplicate(relay, streams):
    first = post(relay, hard_bounce())
    again = post(relay, hard_bounce())
    assert first.json()["outcomes"] == {"suppressed": 1}
    assert again.status_code == 200
    assert again.json()["outcomes"] == {"duplicate": 1}
    assert RelayEvent.objects.count() == 1


def test_the_same_record_twice_in_one_batch_acts_once(relay, streams):
    answer = post(relay, [hard_bounce(), hard_bounce()])
    assert answer.status_code == 200, answer.content
    assert answer.json()["outcomes"] == {"suppressed": 1, "duplicate": 1}
    assert RelayEvent.objects.count() == 1


def test_a_batch_acts_on_relevant_records_and_ignores_the_rest(relay, streams):
    marketing, _ = streams
    body = [record(type="Reception"), hard_bounce("a@example.com"), hard_bounce("b@example.com")]
    answer = post(relay, body)
    assert answer.status_code == 200
    assert answer.json() == {"received": 3, "events": 2, "outcomes": {"suppressed": 2}}
    assert blocked(marketing, "a@example.com") and blocked(marketing, "b@example.com")


def test_a_malformed_batch_is_refused_and_stores_nothing(relay, streams):
    marketing, _ = streams
    body = [hard_bounce("a@example.com"), bounce(recipient=None)]
    answer = post(relay, body)
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_record"
    assert "record 1" in answer.json()["detail"]
    assert "'recipient' is missing" in answer.json()["detail"]
    assert not RelayEvent.objects.exists()
    assert not Suppression.objects.exists()
    assert not blocked(marketing, "a@example.com")


def test_a_batch_over_the_limit_is_refused(relay, streams):
    answer = post(relay, [record(type="Reception")] * 10_001)
    assert answer.status_code == 413
    assert answer.json()["code"] == "too_many"


def test_malformed_json_is_refused(relay):
    for body in ('[{"type": "Bounce",', '{"type": "Delivery", "timestamp": NaN}', b"\xff\xfe{"):
        answer = relay.post(URL, data=body, content_type="application/json")
        assert answer.status_code == 400, body
        assert answer.json()["code"] == "parse_error"
    assert not RelayEvent.objects.exists()


def test_a_key_without_the_scope_is_forbidden(api_client, streams):
    answer = post(api_client("suppression:read"), hard_bounce())
    assert answer.status_code == 403
    assert not RelayEvent.objects.exists()


def test_no_key_is_unauthorised(client, streams):
    answer = client.post(URL, data=json.dumps(hard_bounce()), content_type="application/json")
    assert answer.status_code == 401


def test_a_tenant_bound_key_cannot_report_for_another_tenant(api_client, make_tenant, streams):
    acme = make_tenant("acme")
    client = api_client("reports:write", tenant=acme)
    answer = post(client, hard_bounce())  # meta names tenant "default"
    assert answer.status_code == 403
    assert not RelayEvent.objects.exists()
    delivery = record(DELIVERY, meta={"stream": "marketing"})
    assert post(client, delivery).json()["outcomes"] == {"counted": 1}
    assert DailyCount.objects.get().tenant == acme


# --- ESP tracking webhooks (django-anymail) ---------------------------------------------------

POSTMARK_URL = "/api/v1/events/esp/postmark/tracking/"
SECRET = "postmark-hook:s3cret-Value"

# Postmark's bounce webhook (developer docs; anymail's own test of it), for our recipient.
POSTMARK_HARD_BOUNCE = {
    "RecordType": "Bounce",
    "ID": 4323372036854775807,
    "Type": "HardBounce",
    "TypeCode": 1,
    "Name": "Hard bounce",
    "Tag": "welcome-email",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Metadata": {"tenant": "default", "stream": "marketing", "campaign": "spring-sale"},
    "ServerID": 23,
    "MessageStream": "outbound",
    "Description": "The server was unable to deliver your message (ex: unknown user, mailbox "
    "not found).",
    "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist. "
    "Please try double-checking the recipient's email address for typos or unnecessary spaces.",
    "Email": "gone@example.com",
    "From": "news@sender.example",
    "BouncedAt": "2024-05-13T16:28:50.3963933-04:00",
    "DumpAvailable": True,
    "Inactive": True,
    "CanActivate": True,
    "Subject": "Spring sale",
}

POSTMARK_SPAM_COMPLAINT = {
    "RecordType": "SpamComplaint",
    "ID": 4323372036854775808,
    "Type": "SpamComplaint",
    "TypeCode": 512,
    "Name": "Spam complaint",
    "Tag": "welcome-email",
    "MessageID": "2706ee8a-737c-4285-b032-ccd317af53ed",
    "Metadata": {"tenant": "default", "stream": "marketing"},
    "ServerID": 23,
    "MessageStream": "outbound",
    "Description": "The subscriber explicitly marked this message as spam.",
    "Details": "",
    "Email": "annoyed@example.com",
    "From": "news@sender.example",
    "BouncedAt": "2024-05-13T16:30:12.0000000-04:00",
    "DumpAvailable": True,
    "Inactive": True,
    "CanActivate": False,
    "Subject": "Spring sale",
}


def basic_auth(secret: str) -> str:
    return "Basic " + base64.b64encode(secret.encode()).decode()


@pytest.fixture
def esp(client, settings):
    settings.ESP_WEBHOOKS = ["postmark"]
    settings.ANYMAIL_WEBHOOK_SECRET = SECRET

    def send(payload, auth=SECRET, url=POSTMARK_URL):
        extra = {"HTTP_AUTHORIZATION": basic_auth(auth)} if auth else {}
        body = payload if isinstance(payload, str) else json.dumps(payload)
        return client.post(url, data=body, content_type="application/json", **extra)

    return send


def test_postmark_hard_bounce_webhook_suppresses_like_a_relay_bounce(esp, streams):
    marketing, transactional = streams
    answer = esp(POSTMARK_HARD_BOUNCE)
    assert answer.status_code == 200, answer.content
    assert blocked(marketing, "gone@example.com")
    assert blocked(transactional, "gone@example.com")
    entry = Suppression.objects.get()
    assert (entry.reason, entry.origin) == ("hard_bounce", "relay")
    stored = RelayEvent.objects.get()
    assert (stored.source, stored.kind, stored.outcome) == (
        "anymail:Postmark",
        "bounce",
        "suppressed",
    )
    assert stored.record["esp_event"]["Details"].startswith("smtp;550 5.1.1")


def test_postmark_webhook_delivered_twice_is_one_event(esp, streams):
    assert esp(POSTMARK_HARD_BOUNCE).status_code == 200
    assert esp(POSTMARK_HARD_BOUNCE).status_code == 200
    stored = RelayEvent.objects.get()
    assert stored.outcome == "suppressed"


def test_postmark_spam_complaint_suppresses_commercial_mail(esp, streams):
    marketing, transactional = streams
    assert esp(POSTMARK_SPAM_COMPLAINT).status_code == 200
    assert blocked(marketing, "annoyed@example.com")
    assert not blocked(transactional, "annoyed@example.com")
    assert Suppression.objects.get().reason == "complaint"


@pytest.mark.parametrize("auth", [None, "postmark-hook:wrong", "hook:csk_not-a-key"])
def test_webhook_without_the_shared_secret_or_a_key_is_refused(esp, streams, auth):
    answer = esp(POSTMARK_HARD_BOUNCE, auth=auth)
    assert answer.status_code == 401
    assert answer.json()["code"] == "authentication_failed"
    assert not RelayEvent.objects.exists()
    assert not Suppression.objects.exists()


def test_webhooks_are_closed_while_no_secret_is_configured(client, settings, streams):
    # No ANYMAIL_WEBHOOK_SECRET: no credentials an ESP, or anyone else, could guess are accepted.
    settings.ESP_WEBHOOKS = ["postmark"]
    for auth in (None, basic_auth(":"), basic_auth("unset:")):
        extra = {"HTTP_AUTHORIZATION": auth} if auth else {}
        answer = client.post(
            POSTMARK_URL,
            data=json.dumps(POSTMARK_HARD_BOUNCE),
            content_type="application/json",
            **extra,
        )
        assert answer.status_code == 401
    assert not Suppression.objects.exists()


@pytest.mark.parametrize("esp_name", ["mailgun", "amazon_ses", "postmark", "no-such-esp"])
def test_an_esp_that_is_not_set_up_is_not_found(client, settings, streams, esp_name):
    # Mailgun without its signing key and SES without boto3 used to answer 500 on every post.
    settings.ESP_WEBHOOKS = []
    settings.ANYMAIL_WEBHOOK_SECRET = SECRET
    answer = client.post(
        f"/api/v1/events/esp/{esp_name}/tracking/",
        data="{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth(SECRET),
    )
    assert answer.status_code == 404
    assert "no webhook" in answer.json()["detail"]


def test_a_malformed_esp_payload_is_a_400(esp, streams):
    for body in ("not json", "[1, 2]"):
        answer = esp(body)
        assert answer.status_code == 400, (body, answer.content)
    assert not Suppression.objects.exists()


def test_a_tenant_key_as_the_webhook_password_acts_for_that_tenant_only(
    esp, streams, make_tenant, make_api_key
):
    marketing, transactional = streams
    acme = make_tenant("acme")
    _, key = make_api_key("reports:write", tenant=acme)
    payload = {**POSTMARK_HARD_BOUNCE, "Metadata": {"stream": "marketing"}}
    answer = esp(payload, auth=f"hook:{key}")
    assert answer.status_code == 200, answer.content
    # acme's own never-mail entry: the default tenant's password resets still go out.
    assert not blocked(transactional, "gone@example.com")
    acme_transactional = Stream.objects.get(tenant=acme, slug="transactional")
    assert blocked(acme_transactional, "gone@example.com")
    assert Suppression.objects.get().tenant == acme
    assert RelayEvent.objects.get().tenant == acme


def test_a_tenant_key_cannot_post_another_tenants_esp_events(
    esp, streams, make_tenant, make_api_key
):
    acme = make_tenant("acme")
    _, key = make_api_key("reports:write", tenant=acme)
    answer = esp(POSTMARK_HARD_BOUNCE, auth=f"hook:{key}")  # metadata names tenant "default"
    assert answer.status_code == 200
    assert answer.json()["outcomes"] == {"other_tenant": 1}
    assert not Suppression.objects.exists()


# --- anymail events to relay events (no webhook) -------------------------------------------


def tracking(event_type, **fields):
    fields.setdefault("recipient", "pat@example.com")
    fields.setdefault("timestamp", datetime(2024, 5, 13, 20, 28, 50, tzinfo=UTC))
    return AnymailTrackingEvent(event_type=event_type, **fields)


def only_recipient(event):
    (recipient,) = event.report.recipients
    return recipient


def test_bounced_policy_block_is_policy_not_a_hard_bounce():
    text = "550 5.7.1 [203.0.113.9] Message rejected due to spam content (blocked)"
    event = source_event(tracking("bounced", mta_response=text, event_id="e1"), "SendGrid")
    assert event.kind == "bounce"
    assert only_recipient(event).category == "blocked"
    assert only_recipient(event).hard is False


def test_bounced_with_a_blocked_reject_reason_is_policy_whatever_the_words():
    event = source_event(
        tracking("bounced", mta_response="550 user unknown", reject_reason="blocked"), "Mailgun"
    )
    assert only_recipient(event).category == "blocked"


def test_bounced_user_unknown_is_hard():
    event = source_event(tracking("bounced", mta_response="550 5.1.1 user unknown"), "Postmark")
    recipient = only_recipient(event)
    assert (recipient.category, recipient.hard, recipient.status) == ("permanent", True, "5.1.1")


def test_deferred_is_a_transient_bounce_even_when_it_says_user_unknown():
    event = source_event(
        tracking("deferred", mta_response="450 4.1.1 user unknown, try later"), "SendGrid"
    )
    recipient = only_recipient(event)
    assert (recipient.category, recipient.hard, recipient.action) == (
        "transient",
        False,
        "delayed",
    )


def test_complaints_and_unsubscribes_are_feedback():
    complaint = source_event(tracking("complained"), "Postmark")
    unsubscribe = source_event(tracking("unsubscribed"), "Postmark")
    assert (complaint.kind, complaint.report.feedback_type) == ("feedback", "abuse")
    assert (unsubscribe.kind, unsubscribe.report.feedback_type) == ("feedback", "opt-out")
    assert only_recipient(complaint).address == "pat@example.com"


@pytest.mark.parametrize("event_type", ["queued", "sent", "rejected", "opened", "clicked"])
def test_other_events_are_ignored(event_type):
    assert source_event(tracking(event_type), "Postmark") is None


def test_context_from_metadata_then_tags():
    event = source_event(
        tracking(
            "delivered",
            metadata={"tenant": "acme"},
            tags=["stream:marketing", "campaign:spring", "tenant:ignored"],
        ),
        "Postmark",
    )
    context = event.context
    assert (context.tenant, context.stream, context.campaign) == ("acme", "marketing", "spring")
    assert context.occurred_at == datetime(2024, 5, 13, 20, 28, 50, tzinfo=UTC)
    assert event.source == "anymail:Postmark"


def test_events_without_an_esp_event_id_still_get_distinct_source_ids():
    first = source_event(tracking("delivered", message_id="m1"), "Postmark")
    other = source_event(tracking("delivered", message_id="m2"), "Postmark")
    again = source_event(tracking("delivered", message_id="m1"), "Postmark")
    assert first.source_id == again.source_id != other.source_id
