"""Recipient recovery in the DESIGN.md order: token, trace header, VERP, Original-Rcpt-To (or
a provider's field), enclosed To:. Each rule is shown winning over every later one."""

from __future__ import annotations

import pytest

from fbl.addresses import clean, is_redacted
from fbl.parse import parse
from fbl.recipients import RecoveryHooks, verp_decode

from .messages import arf

TOKENS = {
    "https://u.sender.example/u/TOKEN-TOKEN": "token@example.com",
    "TRACE-VALUE": "trace@example.com",
}


def read_token(value: str) -> str | None:
    return TOKENS.get(value)


def enclosed(*, token: bool = True, trace: bool = True, verp: bool = True) -> str:
    lines = []
    if verp:
        lines.append("Return-Path: <bounces+verp=example.com@mail.sender.example>")
    else:
        lines.append("Return-Path: <news@sender.example>")
    lines += ["From: news@sender.example", "To: Someone <to@example.com>", "Subject: Offers"]
    if token:
        lines.append(
            "List-Unsubscribe: <mailto:u@sender.example>, <https://u.sender.example/u/TOKEN-TOKEN>"
        )
    if trace:
        lines.append("X-Compliance-Trace: TRACE-VALUE")
    return "\n".join(lines) + "\n\nHello\n"


def feedback(*, rcpt_to: bool = True, mail_from: str = "<news@sender.example>") -> str:
    fields = f"Feedback-Type: abuse\nVersion: 1\nOriginal-Mail-From: {mail_from}\n"
    if rcpt_to:
        fields += "Original-Rcpt-To: rcpt@example.com\n"
    return fields


def recovered(raw: bytes, hooks: RecoveryHooks | None = None) -> list[tuple[str | None, str]]:
    return [(r.address, r.found_by) for r in parse(raw, hooks=hooks).recipients]


HOOKS = RecoveryHooks(read_token=read_token)


def test_1_token_in_list_unsubscribe_wins():
    assert recovered(arf(feedback(), enclosed=enclosed()), HOOKS) == [
        ("token@example.com", "token")
    ]


def test_2_trace_header_when_no_token():
    raw = arf(feedback(), enclosed=enclosed(token=False))
    assert recovered(raw, HOOKS) == [("trace@example.com", "trace_header")]


def test_trace_header_name_is_configurable():
    raw = arf(feedback(), enclosed=enclosed(token=False).replace("X-Compliance-Trace", "X-Our"))
    hooks = RecoveryHooks(read_token=read_token, trace_header="X-Our")
    assert recovered(raw, hooks) == [("trace@example.com", "trace_header")]


def test_without_read_token_the_first_two_rules_are_skipped():
    assert recovered(arf(feedback(), enclosed=enclosed())) == [("verp@example.com", "verp")]


def test_3_verp_return_path_of_the_enclosed_message():
    raw = arf(feedback(), enclosed=enclosed(token=False, trace=False))
    assert recovered(raw, HOOKS) == [("verp@example.com", "verp")]


def test_3_verp_original_mail_from_when_the_enclosure_has_none():
    raw = arf(
        feedback(mail_from="<bounces+mf=example.org@mail.sender.example>"),
        enclosed=enclosed(token=False, trace=False, verp=False),
    )
    assert recovered(raw, HOOKS) == [("mf@example.org", "verp")]


def test_verp_prefix_is_configurable_and_can_be_turned_off():
    raw = arf(
        feedback(mail_from="<rtn+x=example.net@mail.sender.example>"),
        enclosed=enclosed(token=False, trace=False, verp=False),
    )
    assert recovered(raw, RecoveryHooks(verp_prefix=r"rtn")) == [("x@example.net", "verp")]
    assert recovered(raw, RecoveryHooks(verp_prefix=None)) == [
        ("rcpt@example.com", "original_rcpt_to")
    ]


def test_4_original_rcpt_to_when_nothing_of_ours():
    raw = arf(feedback(), enclosed=enclosed(token=False, trace=False, verp=False))
    assert recovered(raw, HOOKS) == [("rcpt@example.com", "original_rcpt_to")]


def test_4_provider_field_when_no_original_rcpt_to():
    body = "X-HmXmrOriginalRecipient: provider@example.com\n" + enclosed(
        token=False, trace=False, verp=False
    )
    raw = arf(feedback(rcpt_to=False), enclosed=body)
    assert recovered(raw, HOOKS) == [("provider@example.com", "provider_field")]


def test_5_enclosed_to_last():
    raw = arf(feedback(rcpt_to=False), enclosed=enclosed(token=False, trace=False, verp=False))
    assert recovered(raw, HOOKS) == [("to@example.com", "enclosed_to")]


def test_a_token_reader_that_raises_costs_only_its_rule():
    def broken(value: str) -> str | None:
        raise RuntimeError("key store down")

    raw = arf(feedback(), enclosed=enclosed())
    assert recovered(raw, RecoveryHooks(read_token=broken)) == [("verp@example.com", "verp")]


def test_a_token_that_is_not_ours_is_skipped():
    raw = arf(feedback(), enclosed=enclosed().replace("TOKEN-TOKEN", "SOMEONE-ELSES"))
    assert recovered(raw, HOOKS) == [("trace@example.com", "trace_header")]


@pytest.mark.parametrize(
    ("address", "decoded"),
    [
        ("bounces+alice=example.com@mail.sender.example", "alice@example.com"),
        ("<bounce+a.b=sub.example.co.uk@mail.sender.example>", "a.b@sub.example.co.uk"),
        ("bounces+x=y=example.com@mail.sender.example", "x=y@example.com"),  # last "=" splits
        ("news@sender.example", None),
        ("bounces+nodomain@mail.sender.example", None),
        (None, None),
    ],
)
def test_verp_decoding(address, decoded):
    assert verp_decode(address, RecoveryHooks()) == decoded


@pytest.mark.parametrize(
    "value",
    [
        "redacted@example.net",
        "REDACTED",
        "[redacted]",
        "<redacted>",
        "xxxx@xxxx.net",
        "xxxxx@example.com",
        "someone@xxx.example",
        "***@example.com",
        "hashed@example.com",
        "0cc175b9c0f1b6a831c399e269772661@example.com",
    ],
)
def test_redaction_is_recognised(value):
    assert is_redacted(value)


@pytest.mark.parametrize(
    "value",
    [
        "alice@example.com",
        "x@example.com",
        "xavier@example.com",
        "ab12@example.com",
        "redactedfan@example.com",
        None,
        "",
    ],
)
def test_ordinary_addresses_are_not_redacted(value):
    assert not is_redacted(value)


@pytest.mark.parametrize(
    ("field", "address"),
    [
        ("rfc822; alice@example.com", "alice@example.com"),
        ("RFC822;<alice@example.com>", "alice@example.com"),
        ('rfc822; "odd..name"@example.com', '"odd..name"@example.com'),
        ("Alice <alice@example.com> (comment)", "alice@example.com"),
        ("rfc822; redacted", "redacted"),
        ("  ", None),
    ],
)
def test_clean_takes_the_address_out_of_a_report_field(field, address):
    assert clean(field) == address
