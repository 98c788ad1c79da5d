"""Header lookups through an index (fbl/indexed_message.py) must answer as the stdlib's
Message does, on parsed reports and after every kind of change to the headers."""

from __future__ import annotations

from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from hypothesis import given, settings
from hypothesis import strategies as st

from fbl.headers import read_message
from fbl.indexed_message import IndexedMessage

from .messages import fixture_files, require_fixtures

NAMES = ["Content-Type", "content-type", "Subject", "X-Note", "Received", "MIME-Version"]
CONTENT_TYPES = [
    "text/plain",
    "Multipart/Report; report-type=delivery-status; boundary=x",
    "message/rfc822",
    "text",  # invalid: read as text/plain
    "Text/HTML; charset=utf-8",
]


def answers(msg: Message) -> list[object]:
    return [msg.get(name, "missing") for name in NAMES] + [
        msg["subject"],
        msg.get_content_type(),
        msg.get_content_maintype(),
        msg.get_param("boundary"),
        msg.get_param("report-type"),
    ]


def test_parsed_reports_answer_as_the_stdlib_parse():
    require_fixtures()
    for path in fixture_files():
        raw = path.read_bytes()
        ours = [answers(part) for part in read_message(raw).walk()]
        theirs = [answers(part) for part in BytesParser(policy=compat32).parsebytes(raw).walk()]
        assert ours == theirs, path.name


def test_every_part_of_a_report_is_indexed():
    raw = (
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: hi\r\n\r\nbody\r\n--b--\r\n"
    )
    parts = list(read_message(raw).walk())
    assert len(parts) == 4
    assert all(isinstance(part, IndexedMessage) for part in parts)


# One change to a message's headers, as (method name, arguments).
CHANGES = st.one_of(
    st.tuples(st.just("__setitem__"), st.tuples(st.sampled_from(NAMES), st.text(max_size=8))),
    st.tuples(st.just("__delitem__"), st.tuples(st.sampled_from(NAMES))),
    st.tuples(st.just("replace_header"), st.tuples(st.sampled_from(NAMES), st.text(max_size=8))),
    st.tuples(st.just("add_header"), st.tuples(st.sampled_from(NAMES), st.text(max_size=8))),
    st.tuples(st.just("set_raw"), st.tuples(st.sampled_from(NAMES), st.text(max_size=8))),
    st.tuples(st.just("set_type"), st.tuples(st.sampled_from(["text/html", "multipart/mixed"]))),
    st.tuples(st.just("set_param"), st.tuples(st.just("charset"), st.just("utf-8"))),
    st.tuples(st.just("del_param"), st.tuples(st.just("charset"))),
    st.tuples(st.just("set_boundary"), st.tuples(st.just("new-boundary"))),
    st.tuples(
        st.just("set_default_type"), st.tuples(st.sampled_from(["message/rfc822", "text/plain"]))
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    start=st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(CONTENT_TYPES)), max_size=4),
    changes=st.lists(CHANGES, max_size=8),
)
def test_changed_headers_answer_as_a_plain_message(start, changes):
    plain, indexed = Message(), IndexedMessage()
    for msg in (plain, indexed):
        for name, value in start:
            msg[name] = value
    assert answers(indexed) == answers(plain)
    for method, args in changes:
        outcomes = []
        for msg in (plain, indexed):
            try:
                getattr(msg, method)(*args)
                outcomes.append(None)
            except Exception as exc:  # e.g. replace_header of a missing field: KeyError
                outcomes.append(type(exc))
        assert outcomes[0] == outcomes[1]
        assert answers(indexed) == answers(plain), (method, args)
