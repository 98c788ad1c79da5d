"""Hostile and broken input: `parse` answers every byte string with a report, quickly.

`parse` wraps everything in a last-resort handler that turns an unexpected exception into the
problem "unreadable message (...)"; these tests also fail when that handler is reached, so a
bug in the parsers cannot hide behind it.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fbl.parse import parse
from fbl.report import KINDS, ParsedReport, to_json

from .messages import fixture_files, require_fixtures

CORPUS = [path.read_bytes() for path in fixture_files()]

# One message must take well under a second; hypothesis fails an example that takes longer.
PER_MESSAGE = timedelta(seconds=1)
FUZZ = settings(
    max_examples=300,
    deadline=PER_MESSAGE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check(raw: bytes, **kwargs) -> ParsedReport:
    report = parse(raw, **kwargs)
    assert report.kind in KINDS
    assert report.raw_size == len(raw)
    unexpected = [p for p in report.problems if p.startswith("unreadable message")]
    assert not unexpected, unexpected
    for recipient in report.recipients:
        assert recipient.address is None or "@" in recipient.address
        assert not (recipient.redacted and recipient.address)
    # Everything the report says can be written out as UTF-8 JSON (no lone surrogates).
    json.dumps(to_json(report), ensure_ascii=False).encode("utf-8")
    for item in (report, *report.recipients):
        for value in vars_of(item):
            if isinstance(value, str):
                value.encode("utf-8")
    return report


def vars_of(item) -> list:
    return [getattr(item, f.name) for f in dataclasses.fields(item) if f.name != "raw"]


@st.composite
def mutated_fixture(draw) -> bytes:
    raw = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        operation = draw(
            st.sampled_from(["flip", "truncate", "insert", "delete", "shuffle", "huge_header"])
        )
        at = draw(st.integers(min_value=0, max_value=max(len(raw) - 1, 0)))
        if operation == "flip" and raw:
            for _ in range(draw(st.integers(min_value=1, max_value=64))):
                position = draw(st.integers(min_value=0, max_value=len(raw) - 1))
                raw[position] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif operation == "truncate":
            del raw[at:]
        elif operation == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=2048))
        elif operation == "delete":
            del raw[at : at + draw(st.integers(min_value=1, max_value=4096))]
        elif operation == "shuffle":
            lines = bytes(raw).split(b"\n")
            draw(st.randoms(use_true_random=False)).shuffle(lines)
            raw = bytearray(b"\n".join(lines))
        else:
            name = draw(st.sampled_from([b"Subject", b"From", b"Content-Type", b"X-Junk", b"To"]))
            size = draw(st.integers(min_value=10_000, max_value=200_000))
            filler = draw(st.sampled_from([b"a", b"@", b"=?utf-8?q?", b"; boundary=", b" \r\n\t"]))
            raw[0:0] = name + b": " + (filler * (size // len(filler))) + b"\r\n"
    return bytes(raw)


@FUZZ
@given(raw=mutated_fixture())
def test_mutated_real_reports(raw):
    require_fixtures()
    check(raw)


@FUZZ
@given(raw=mutated_fixture(), limit=st.integers(min_value=0, max_value=70_000))
def test_mutated_real_reports_truncated_by_max_bytes(raw, limit):
    report = check(raw, max_bytes=limit)
    assert any("truncated" in p for p in report.problems) == (len(raw) > limit)


@FUZZ
@given(raw=st.binary(max_size=20_000))
def test_random_bytes(raw):
    check(raw)


HEADER_LINE = st.tuples(
    st.sampled_from(
        [
            "Content-Type",
            "Content-Transfer-Encoding",
            "From",
            "Subject",
            "To",
            "Auto-Submitted",
            "Final-Recipient",
            "Feedback-Type",
            "Status",
        ]
    ),
    st.text(max_size=200),
).map(lambda pair: f"{pair[0]}: {pair[1]}")


@FUZZ
@given(
    headers=st.lists(HEADER_LINE, max_size=20),
    parts=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "message/delivery-status",
                    "message/feedback-report",
                    "message/rfc822",
                    "text/rfc822-headers",
                    "text/plain",
                    "multipart/mixed",
                    "message/global-delivery-status",
                ]
            ),
            st.sampled_from(["", "base64", "quoted-printable", "8bit", "x-junk"]),
            st.text(max_size=600),
        ),
        max_size=5,
    ),
    report_type=st.sampled_from(["feedback-report", "delivery-status", "", "junk"]),
)
def test_random_report_structures(headers, parts, report_type):
    body = "".join(
        f"--B\nContent-Type: {ctype}\n"
        + (f"Content-Transfer-Encoding: {cte}\n" if cte else "")
        + f"\n{payload}\n"
        for ctype, cte, payload in parts
    )
    text = (
        "\n".join(headers)
        + f'\nContent-Type: multipart/report; report-type={report_type}; boundary="B"\n\n'
        + body
        + "--B--\n"
    )
    check(text.encode("utf-8", "surrogatepass"))
