"""KumoMTA log records to relay events (fbl/kumomta.py). Records follow KumoMTA's documented
log record (docs.kumomta.com/reference/log_record/) and the records its own code and tests
write (kumo-log-types, the Expiration and OOB records of kumod)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from fbl.events import EventError
from fbl.kumomta import parse_records
from fbl.recipients import RecoveryHooks

# The example record of KumoMTA's log record reference.
DELIVERY = {
    "type": "Delivery",
    "id": "1d98076abbbc11ed940250ebf67f93bd",
    "sender": "user@sender.example.com",
    "recipient": "user@recipient.example.com",
    "queue": "campaign:tenant@domain",
    "site": "source2->(alt1|alt2|alt3|alt4)?.gmail-smtp-in.l.google.com.",
    "size": 1047,
    "response": {
        "code": 250,
        "enhanced_code": {"class": 2, "subject": 0, "detail": 0},
        "content": "OK ids=8a5475ccbbc611eda12250ebf67f93bd",
        "command": ".",
    },
    "peer_address": {"name": "gmail-smtp-in.l.google.com.", "addr": "142.251.2.27"},
    "timestamp": 1678069691,
    "created": 1678069691,
    "num_attempts": 0,
    "bounce_classification": "Uncategorized",
    "egress_pool": "pool0",
    "egress_source": "source2",
    "source_address": {
        "address": "10.0.0.1:53210",
        "protocol": "socks5",
        "server": "192.168.1.1:5000",
    },
    "feedback_report": None,
    "meta": {},
    "headers": {},
    "delivery_protocol": "ESMTP",
    "reception_protocol": "ESMTP",
    "nodeid": "557f3ad4-2c8c-11ee-976e-782d7e12e173",
    "tls_cipher": "TLS_AES_256_GCM_SHA384",
    "tls_protocol_version": "TLSv1.3",
    "session_id": "9bcd689e-23d9-41b7-a015-63a1382f8b57",
}


def record(base=DELIVERY, **changes):
    out = copy.deepcopy(base)
    out.update(changes)
    return out


def response(code, enhanced, content, command=None):
    klass, subject, detail = (int(p) for p in enhanced.split(".")) if enhanced else (0, 0, 0)
    return {
        "code": code,
        "enhanced_code": {"class": klass, "subject": subject, "detail": detail}
        if enhanced
        else None,
        "content": content,
        "command": command,
    }


def bounce(**changes):
    base = record(
        type="Bounce",
        response=response(
            550,
            "5.1.1",
            "The email account that you tried to reach does not exist. Please try "
            "double-checking the recipient's email address for typos or unnecessary spaces.",
            "RCPT TO:<user@recipient.example.com>\r\n",
        ),
        meta={"tenant": "acme", "stream": "marketing", "campaign": "spring-sale"},
        headers={
            "Message-ID": "<20230306.abc@sender.example.com>",
            "X-Compliance-Trace": "trace-value",
        },
        num_attempts=1,
    )
    base.update(changes)
    return base


def one(data, **kwargs):
    events, _ = parse_records(data, **kwargs)
    assert len(events) == 1, events
    return events[0]


def only_recipient(event):
    (recipient,) = event.report.recipients
    return recipient


# --- deliveries ----------------------------------------------------------------------------


def test_delivery_record_from_the_docs_is_a_delivery():
    event = one(DELIVERY)
    assert event.source == "kumomta"
    assert event.kind == "delivery"
    assert event.recipient == "user@recipient.example.com"
    assert event.report is None
    assert event.context.sender == "user@sender.example.com"
    assert event.context.occurred_at == datetime(2023, 3, 6, 2, 28, 11, tzinfo=UTC)
    assert event.record == DELIVERY


def test_newer_records_give_the_time_to_the_second_fraction():
    event = one(record(event_time="2023-03-06T02:28:11.734512Z"))
    assert event.context.occurred_at == datetime(2023, 3, 6, 2, 28, 11, 734512, tzinfo=UTC)


def test_tenant_stream_and_campaign_come_from_meta():
    event = one(record(meta={"tenant": "acme", "stream": "marketing", "campaign": 2024}))
    assert (event.context.tenant, event.context.stream, event.context.campaign) == (
        "acme",
        "marketing",
        "2024",
    )


# --- bounces -------------------------------------------------------------------------------


def test_user_unknown_bounce_is_a_hard_bounce():
    event = one(bounce())
    assert event.kind == "bounce"
    assert event.recipient == "user@recipient.example.com"
    assert event.context.tenant == "acme"
    assert event.context.stream == "marketing"
    assert event.context.campaign == "spring-sale"
    report = event.report
    assert report.kind == "dsn"
    assert report.original_message_id == "<20230306.abc@sender.example.com>"
    assert "X-Compliance-Trace: trace-value" in report.original_headers
    recipient = only_recipient(event)
    assert recipient.address == "user@recipient.example.com"
    assert recipient.status == "5.1.1"
    assert recipient.category == "permanent"
    assert recipient.hard is True
    assert recipient.action == "failed"
    assert recipient.diagnostic.startswith("550 5.1.1 The email account that you tried")
    assert recipient.remote_mta == "gmail-smtp-in.l.google.com"


def test_policy_refusal_from_kumomtas_own_bounce_test_is_policy_not_a_hard_bounce():
    # kumo-log-types' make_bounce(): 550 5.7.1 "no thanks" from target.example.com
    event = one(
        bounce(
            response=response(550, "5.7.1", "no thanks"),
            peer_address={"name": "target.example.com", "addr": "42.42.42.42"},
        )
    )
    recipient = only_recipient(event)
    assert recipient.category == "blocked"
    assert recipient.hard is False
    assert recipient.diagnostic == "550 5.7.1 no thanks"


def test_spam_block_is_policy_even_with_a_5_1_1_code():
    content = "Message rejected due to recipient preferences: bulk mail from your IP is blocked"
    event = one(bounce(response=response(550, "5.1.1", content, "RCPT TO:<a@b>\r\n")))
    assert only_recipient(event).category == "blocked"


def test_refusal_at_mail_from_never_judged_the_recipient():
    text = "Requested action not taken: mailbox unavailable"
    at_rcpt = one(bounce(response=response(550, None, text, "RCPT TO:<a@b.example>\r\n")))
    at_mail = one(bounce(response=response(550, None, text, "MAIL FROM:<s@x.example>\r\n")))
    assert only_recipient(at_rcpt).category == "permanent"
    assert only_recipient(at_mail).category == "blocked"
    assert only_recipient(at_mail).hard is False


def test_bounce_without_enhanced_code_takes_the_status_from_the_reply():
    event = one(bounce(response=response(550, None, "No such user (user@recipient.example.com)")))
    recipient = only_recipient(event)
    assert recipient.status == "5.1.1"
    assert recipient.category == "permanent"


def test_oob_record_is_a_bounce_classified_like_one():
    # kumod writes one OOB record per failed recipient of a DSN it received: the DSN's
    # status as enhanced_code, its smtp diagnostic split into code and content.
    oob = record(
        type="OOB",
        id="bd3bcb4e9fb111eea6d2cc28aa0a5c5a",
        size=0,
        sender="bounces+user=recipient.example.com@bounce.sender.example.com",
        recipient="user@recipient.example.com",
        queue="bounce.sender.example.com",
        site="",
        peer_address={"name": "mx.recipient.example.com", "addr": "0.0.0.0"},
        response=response(550, "5.2.1", "The email account that you tried to reach is disabled."),
        num_attempts=0,
        meta={},
        headers={},
    )
    event = one(oob)
    assert event.kind == "bounce"
    assert event.recipient == "user@recipient.example.com"
    assert event.report.reporting_mta == "mx.recipient.example.com"
    recipient = only_recipient(event)
    assert recipient.status == "5.2.1"
    assert recipient.category == "permanent"
    assert recipient.hard is True


def test_mailbox_full_transient_failure_is_a_soft_bounce():
    text = (
        "The email account that you tried to reach is over quota. Please direct the "
        "recipient to https://support.google.com/mail/?p=OverQuotaTemp"
    )
    event = one(
        record(type="TransientFailure", num_attempts=2, response=response(452, "4.2.2", text))
    )
    assert event.kind == "bounce"
    recipient = only_recipient(event)
    assert recipient.category == "transient"
    assert recipient.action == "delayed"
    assert recipient.hard is False


def test_transient_failure_is_never_permanent_whatever_its_words():
    # A 5xx that the policy turned into a retry (smtp_client_rewrite_delivery_status).
    event = one(
        record(
            type="TransientFailure",
            response=response(550, "5.1.1", "user unknown", "RCPT TO:<a@b>\r\n"),
        )
    )
    recipient = only_recipient(event)
    assert recipient.category == "transient"
    assert recipient.hard is False


def test_rate_limit_transient_failure_stays_a_policy_signal():
    text = (
        "[203.0.113.1] Our system has detected an unusual rate of unsolicited mail "
        "originating from your IP address."
    )
    event = one(record(type="TransientFailure", response=response(421, "4.7.28", text)))
    assert only_recipient(event).category == "blocked"


def test_relay_internal_failure_is_not_the_recipients_soft_bounce():
    internal = one(
        record(
            type="TransientFailure",
            response=response(400, None, "KumoMTA internal: error in deliver_message: throttled"),
        )
    )
    refused = one(
        record(
            type="TransientFailure",
            response=response(
                400,
                None,
                "KumoMTA internal: failed to send message: Connection refused (os error 111)",
            ),
        )
    )
    assert only_recipient(internal).category == "unknown"
    assert only_recipient(refused).category == "transient"


def test_expiration_record_from_kumod_is_a_transient_bounce():
    # kumo-log-types' make_expiration()
    expiration = record(
        type="Expiration",
        id="ID",
        sender="sender@sender.example.com",
        recipient="recip@target.example.com",
        queue="target.example.com",
        site="",
        size=0,
        num_attempts=3,
        peer_address=None,
        delivery_protocol=None,
        response=response(
            551,
            "5.4.7",
            "Next delivery time would be at SOME TIME which exceeds the expiry time EXPIRES "
            "configured via set_scheduling",
        ),
    )
    event = one(expiration)
    assert event.kind == "bounce"
    recipient = only_recipient(event)
    assert recipient.category == "transient"
    assert recipient.hard is False
    assert recipient.status == "5.4.7"
    assert recipient.diagnostic.startswith("551 5.4.7 Next delivery time")


# --- feedback ------------------------------------------------------------------------------

REPORT_MESSAGE = (
    "From: <somesender@example.net>\n"
    "Received: from mailserver.example.net (mailserver.example.net\n"
    "    [192.0.2.1]) by example.com with ESMTP id M63d4137594e46;\n"
    "    Tue, 08 Mar 2005 14:00:00 -0400\n"
    "X-KumoRef: eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoidGVzdEBleGFtcGxlLmNvbSJ9\n"
    "To: <Undisclosed Recipients>\n"
    "Subject: Earn money\n"
    "MIME-Version: 1.0\n"
    "Content-type: text/plain\n"
    "Message-ID: 8787KJKJ3K4J3K4J3K4J3.mail@example.net\n"
    "Date: Thu, 02 Sep 2004 12:31:03 -0500\n"
    "\n"
    "Spam Spam Spam\n"
)

# The Feedback example of the log record reference (RFC 5965's second example, as KumoMTA
# parses it), logged for the report message KumoMTA received at our feedback-loop address.
FEEDBACK = record(
    type="Feedback",
    id="5a0b2dca9fb311eeab36cc28aa0a5c5a",
    sender="abuse-report@example.com",
    recipient="fbl@sender.example.com",
    queue="sender.example.com",
    site="",
    response=response(250, None, "OK"),
    peer_address={"name": "mail.example.com", "addr": "192.0.2.9"},
    feedback_report={
        "feedback_type": "abuse",
        "user_agent": "SomeGenerator/1.0",
        "version": 1,
        "arrival_date": "2005-03-08T18:00:00Z",
        "incidents": None,
        "original_envelope_id": None,
        "original_mail_from": "<somesender@example.net>",
        "reporting_mta": {"mta_type": "dns", "name": "mail.example.com"},
        "source_ip": "192.0.2.1",
        "authentication_results": [
            "mail.example.com; spf=fail smtp.mail=somesender@example.com",
        ],
        "original_rcpto_to": ["<user@example.com>"],
        "reported_domain": ["example.net"],
        "reported_uri": ["http://example.net/earn_money.html", "mailto:user@example.com"],
        "extensions": {"removal-recipient": ["user@example.com"]},
        "original_message": REPORT_MESSAGE,
        "supplemental_trace": {"recipient": "test@example.com"},
    },
)


def feedback(**report_changes):
    out = copy.deepcopy(FEEDBACK)
    out["feedback_report"].update(report_changes)
    return out


def test_feedback_record_from_the_docs_is_an_abuse_complaint():
    event = one(FEEDBACK)
    assert event.kind == "feedback"
    report = event.report
    assert report.kind == "arf"
    assert report.feedback_type == "abuse"
    assert report.user_agent == "SomeGenerator/1.0"
    assert report.version == "1"
    assert report.arrival_date == datetime(2005, 3, 8, 18, 0, tzinfo=UTC)
    assert report.source_ip == "192.0.2.1"
    assert report.reporting_mta == "mail.example.com"
    assert report.reported_domains == ("example.net",)
    assert report.original_rcpt_to == ("<user@example.com>",)
    assert report.original_message_id == "8787KJKJ3K4J3K4J3K4J3.mail@example.net"
    assert "Subject: Earn money" in report.original_headers
    # KumoMTA decoded its own trace header: the recipient it sent the message to, ahead of
    # the Original-Rcpt-To the report gives.
    (recipient,) = report.recipients
    assert (recipient.address, recipient.found_by) == ("test@example.com", "trace_header")
    assert event.recipient == "test@example.com"
    # The record's own sender is the feedback loop; the context names the original sender.
    assert event.context.sender == "somesender@example.net"


def test_feedback_without_trace_uses_original_rcpt_to():
    # KumoMTA's third RFC 5965 test report (Yahoo), with the newer string version.
    event = one(
        feedback(
            user_agent="Yahoo!-Mail-Feedback/2.0",
            version="0.1",
            arrival_date="2023-12-14T16:16:15Z",
            original_mail_from="<test1@example.com>",
            reporting_mta=None,
            source_ip=None,
            authentication_results=["authentication result string is not available"],
            original_rcpto_to=["user@example.com"],
            reported_domain=["bounce.kumo.example.com"],
            reported_uri=[],
            extensions={},
            original_message=(
                "Date: Thu, 14 Dec 2023 16:16:14 +0000\nTo: user@example.com\n"
                "Subject: test Thu, 14 Dec 2023 16:16:14 +0000\n\nThis is a test mailing\n\n"
            ),
            supplemental_trace=None,
        )
    )
    (recipient,) = event.report.recipients
    assert (recipient.address, recipient.found_by) == ("user@example.com", "original_rcpt_to")
    assert event.report.version == "0.1"


def test_redacted_original_rcpt_to_falls_back_to_the_enclosed_to():
    # KumoMTA's fourth RFC 5965 test report (Comcast through Return Path): the
    # Original-Rcpt-To is a hashed local part.
    event = one(
        feedback(
            user_agent="ReturnPathFBL/2.0",
            version="1",
            original_mail_from="foo@bounce.example.com",
            source_ip="x.x.x.x",
            original_rcpto_to=["cb4a01a48251d4765f489076aa81e2a4@comcast.net"],
            reported_domain=["bounce.example.com"],
            extensions={
                "abuse-type": ["complaint"],
                "source": ["Comcast"],
                "subscription-link": ["https://fbl.returnpath.net/manage/subscriptions/xxxx"],
            },
            original_message=(
                "Date: Thu, 14 Dec 2023 16:16:14 +0000\nTo: user@example.com\n"
                "Subject: test Thu, 14 Dec 2023 16:16:14 +0000\n\nThis is a test mailing\n\n"
            ),
            supplemental_trace=None,
        )
    )
    (recipient,) = event.report.recipients
    assert (recipient.address, recipient.found_by) == ("user@example.com", "enclosed_to")


def test_redacted_feedback_with_nothing_else_has_no_recipient_address():
    event = one(
        feedback(
            original_rcpto_to=["redacted@example.com"],
            original_message="Subject: hello\nTo: <Undisclosed Recipients>\n\nbody\n",
            supplemental_trace=None,
        )
    )
    assert event.recipient is None
    (recipient,) = event.report.recipients
    assert recipient.redacted is True
    assert recipient.address is None
    assert "the recipient address is redacted" in event.report.problems


def test_our_token_in_the_reported_message_comes_first():
    message = "List-Unsubscribe: <https://c.example/u/TOKEN123>\nTo: other@example.com\n\nhi\n"

    def read_token(value):
        return "pat@example.com" if "TOKEN123" in value else None

    event = one(feedback(original_message=message), hooks=RecoveryHooks(read_token=read_token))
    (recipient,) = event.report.recipients
    assert (recipient.address, recipient.found_by) == ("pat@example.com", "token")


def test_feedback_types_are_kept_lower_case():
    assert one(feedback(feedback_type="Not-Spam")).report.feedback_type == "not-spam"
    assert one(feedback(feedback_type="opt-out")).report.feedback_type == "opt-out"


# --- batches, ignored records, identity -----------------------------------------------------


@pytest.mark.parametrize(
    "rtype",
    [
        "Reception",
        "Rejection",
        "AdminBounce",
        "Delayed",
        "AdminRebind",
        "DeferredInjectionRebind",
        "SomethingNewer",
    ],
)
def test_records_that_are_not_about_delivery_give_no_event(rtype):
    events, notes = parse_records([record(type=rtype), DELIVERY])
    assert [e.kind for e in events] == ["delivery"]
    assert notes == [f"record 0: {rtype} records are not acted on"]


def test_admin_bounce_from_kumod_gives_no_event():
    # kumod's AdminBounce: our operator failed the queue, the recipient did nothing.
    admin = record(
        type="AdminBounce",
        site="localhost",
        peer_address=None,
        response=response(551, "5.7.1", "Administrator bounced with reason: campaign stopped"),
    )
    assert parse_records(admin)[0] == []


def test_a_batch_gives_its_events_in_order():
    events, _ = parse_records([DELIVERY, bounce(), FEEDBACK])
    assert [e.kind for e in events] == ["delivery", "bounce", "feedback"]
    assert parse_records([]) == ([], [])


def test_the_same_record_posted_twice_has_the_same_source_id():
    assert one(bounce()).source_id == one(copy.deepcopy(bounce())).source_id


def test_each_retry_and_each_record_type_has_its_own_source_id():
    first = record(type="TransientFailure", num_attempts=1, timestamp=1678069691)
    second = record(type="TransientFailure", num_attempts=2, timestamp=1678073291)
    ids = {
        one(first).source_id,
        one(second).source_id,
        one(DELIVERY).source_id,
        one(bounce()).source_id,
        one(bounce(recipient="other@recipient.example.com")).source_id,
    }
    assert len(ids) == 5
    assert all(len(i) <= 255 for i in ids)


# --- malformed input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("Delivery", "must be a KumoMTA log record (a JSON object) or an array"),
        (42, "not a number"),
        ([DELIVERY, "Delivery"], "record 1: expected a log record (a JSON object), got a string"),
        ([None], "record 0: expected a log record"),
        ([DELIVERY, {"id": "x"}], "record 1: 'type' is missing"),
        ([record(type=7)], "record 0: 'type' must be a string, got a number"),
        ([bounce(recipient=None)], "record 0: 'recipient' is missing"),
        ([DELIVERY, bounce(recipient="")], "record 1: 'recipient' is missing"),
        ([record(recipient=["a@b.example"])], "'recipient' must be a string, got an array"),
        ([record(id=None)], "record 0: 'id' is missing"),
        ([record(timestamp="1678069691")], "'timestamp' must be a number, got a string"),
        ([record(timestamp=True)], "'timestamp' must be a number, got a boolean"),
        ([record(timestamp=None)], "'timestamp' is missing"),
        ([record(event_time="yesterday")], "'event_time' is not an RFC 3339 date"),
        ([bounce(response="550 no")], "'response' must be an object, got a string"),
        ([bounce(response={"code": "550"})], "'response.code' must be a whole number"),
        (
            [bounce(response={"code": 550, "enhanced_code": {"class": 5, "subject": 1}})],
            "'response.enhanced_code.detail' is missing",
        ),
        ([bounce(meta=[])], "'meta' must be an object, got an array"),
        ([bounce(meta={"tenant": ["acme"]})], "'meta.tenant' must be a string"),
        ([bounce(headers={"Message-ID": 5})], "'headers.Message-ID' must be a string"),
        ([record(num_attempts=1.5)], "'num_attempts' must be a whole number"),
        ([record(FEEDBACK, feedback_report=None)], "'feedback_report' is missing"),
        ([feedback(feedback_type=None)], "'feedback_report.feedback_type' is missing"),
        (
            [feedback(original_rcpto_to="user@example.com")],
            "'feedback_report.original_rcpto_to' must be an array of strings",
        ),
    ],
)
def test_malformed_input_is_refused_naming_the_record(data, message):
    with pytest.raises(EventError) as caught:
        parse_records(data)
    assert message in str(caught.value)
