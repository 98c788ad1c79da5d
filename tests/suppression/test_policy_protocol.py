"""The policy protocol's wire format (suppression/policy.py): no server, no database."""

import pytest

from suppression import policy
from suppression.policy import Action, MalformedRequest, RequestParser, parse_requests

RCPT = (
    b"request=smtpd_access_policy\n"
    b"protocol_state=RCPT\n"
    b"protocol_name=ESMTP\n"
    b"client_address=192.0.2.1\n"
    b"sender=news@example.com\n"
    b"recipient=pat@example.org\n"
    b"queue_id=\n"
    b"sasl_username=\n"
    b"\n"
)


def test_a_request_is_name_value_lines_ended_by_an_empty_line():
    [request] = parse_requests(RCPT)
    assert request.request == "smtpd_access_policy"
    assert request.protocol_state == "RCPT"
    assert request.sender == "news@example.com"
    assert request.recipient == "pat@example.org"
    assert request.get("queue_id") == ""
    assert request.get("not_sent") == ""
    assert request.asks_about_recipient


def test_a_value_may_contain_equals_signs_and_the_null_sender_is_empty():
    [request] = parse_requests(b"sender=\nccert_subject=CN=mx,O=Example\n\n")
    assert request.sender == ""
    assert request.get("ccert_subject") == "CN=mx,O=Example"


def test_nothing_is_answered_before_the_empty_line():
    parser = RequestParser()
    assert parser.feed(RCPT[:-1]) == []
    assert parser.in_progress
    [request] = parser.feed(b"\n")
    assert request.recipient == "pat@example.org"
    assert not parser.in_progress


def test_requests_split_anywhere_across_reads_come_out_whole_and_in_order():
    stream = RCPT + RCPT.replace(b"pat@", b"kim@") + b"request=smtpd_access_policy\n\n"
    for size in (1, 2, 7, 64, len(stream)):
        parser = RequestParser()
        found = []
        for start in range(0, len(stream), size):
            found += parser.feed(stream[start : start + size])
        assert [r.recipient for r in found] == ["pat@example.org", "kim@example.org", ""]


def test_other_protocol_states_do_not_ask_about_a_recipient():
    for state in (b"CONNECT", b"EHLO", b"MAIL", b"DATA", b"END-OF-MESSAGE", b"VRFY"):
        [request] = parse_requests(RCPT.replace(b"RCPT", state))
        assert not request.asks_about_recipient
    [other] = parse_requests(RCPT.replace(b"smtpd_access_policy", b"something_else"))
    assert not other.asks_about_recipient


def test_crlf_line_endings_are_tolerated():
    [request] = parse_requests(RCPT.replace(b"\n", b"\r\n"))
    assert request.recipient == "pat@example.org"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"request=smtpd_access_policy\ngarbage without equals\n\n", "without '='"),
        (b"=value\n\n", "without a name"),
        (b"recipient=" + b"a" * 2048 + b"\n\n", "longer than 2048"),
        (b"x" * 5000, "longer than 2048"),
        (b"".join(b"a%d=b\n" % i for i in range(101)) + b"\n", "more than 100 attributes"),
    ],
)
def test_input_that_breaks_the_protocol_is_refused_with_a_reason(data, reason):
    with pytest.raises(MalformedRequest, match=reason):
        RequestParser().feed(data)


def test_a_line_of_exactly_the_limit_is_accepted():
    line = b"recipient=" + b"a" * (policy.MAX_LINE - len(b"recipient="))
    assert len(line) == policy.MAX_LINE
    [request] = parse_requests(line + b"\n\n")
    assert len(request.recipient) == policy.MAX_LINE - len("recipient=")


def test_an_over_long_line_is_refused_before_its_end_arrives():
    parser = RequestParser()
    parser.feed(b"recipient=" + b"a" * 2000)
    with pytest.raises(MalformedRequest):
        parser.feed(b"a" * 100)


def test_undecodable_octets_do_not_break_the_request():
    [request] = parse_requests(b"recipient=\xff\xfe@example.org\n\n")
    assert request.recipient == "\ufffd\ufffd@example.org"


def test_an_answer_is_one_action_line_and_an_empty_line():
    assert policy.DUNNO.encode() == b"action=DUNNO\n\n"
    assert (
        policy.reject_suppressed(reason="unsubscribe", scope="commercial").encode()
        == b"action=REJECT 5.7.1 Suppressed: unsubscribe (commercial)\n\n"
    )


def test_answer_text_cannot_end_the_answer_early_or_grow_without_bound():
    encoded = Action("REJECT", "5.7.1 two\nlines\r\n\nand more" + "x" * 500).encode()
    assert encoded.count(b"\n") == 2 and encoded.endswith(b"\n\n")
    assert len(encoded) <= len("action=REJECT ") + policy.MAX_TEXT + 2


@pytest.mark.parametrize(
    ("setting", "encoded"),
    [
        ("DEFER_IF_PERMIT", b"action=DEFER_IF_PERMIT 4.4.3 Suppression list unavailable, try"),
        ("defer_if_permit", b"action=DEFER_IF_PERMIT 4.4.3"),
        ("DEFER_IF_PERMIT 4.3.0 Try later", b"action=DEFER_IF_PERMIT 4.3.0 Try later\n\n"),
        ("DUNNO", b"action=DUNNO\n\n"),
        ("REJECT", b"action=REJECT 5.4.3 Suppression list unavailable\n\n"),
        ("451 4.3.0 Later", b"action=451 4.3.0 Later\n\n"),
        ("450", b"action=450 4.4.3"),
    ],
)
def test_fail_actions_come_from_the_settings_with_a_status_code(setting, encoded):
    assert policy.fail_action(setting).encode().startswith(encoded)


@pytest.mark.parametrize("setting", ["OK", "PERMIT", "", "DEFER_IF_PERMITX", "250 fine"])
def test_a_fail_action_that_is_not_one_is_refused(setting):
    with pytest.raises(ValueError, match="unknown policy fail action"):
        policy.fail_action(setting)


def test_requests_round_trip_through_their_wire_form():
    attributes = {"request": "smtpd_access_policy", "recipient": "zoë@example.org", "sender": ""}
    [request] = parse_requests(policy.encode_request(attributes))
    assert dict(request.attributes) == attributes
