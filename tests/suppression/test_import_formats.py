"""Reading provider suppression exports: format detection, reasons, dates, bad rows, streaming."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from suppression.import_formats import (
    FORMATS,
    REASONS,
    ImportFormat,
    ImportRow,
    UnknownFormat,
    detect_format,
    parse_time,
    read_rows,
)

SAMPLES = Path(__file__).parent / "samples"


def read_sample(name: str, **kwargs: str) -> tuple[ImportFormat, list[ImportRow]]:
    with (SAMPLES / name).open(newline="", encoding="utf-8") as handle:
        fmt, rows = read_rows(handle, **kwargs)
        return fmt, list(rows)


def read_text(text: str, **kwargs: str) -> tuple[ImportFormat, list[ImportRow]]:
    fmt, rows = read_rows(text.splitlines(keepends=True), **kwargs)
    return fmt, list(rows)


@dataclass(frozen=True)
class Expected:
    format: str
    rows: int
    reasons: list[str]  # of the good rows, in file order
    bad: dict[int, str] = field(default_factory=dict)  # line -> error
    created_at: tuple[int, datetime | None] = (2, None)  # line -> created_at of that row
    detail: tuple[int, str] = (2, "")  # line -> source_detail of that row


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


EXPECTED = {
    "sendgrid-global-unsubscribes.csv": Expected(
        format="sendgrid-unsubscribes",
        rows=7,
        reasons=["unsubscribe"] * 6,
        bad={6: "no email address"},
        created_at=(2, utc(2024, 1, 1, 10, 0, 0)),  # epoch seconds 1704103200
        detail=(2, "SendGrid global unsubscribe"),
    ),
    "sendgrid-bounces.csv": Expected(
        format="sendgrid-bounces",
        rows=6,
        reasons=["hard_bounce", "soft_bounce", "hard_bounce", "hard_bounce", "hard_bounce"],
        bad={6: "unparseable date '31/12/2023'"},
        created_at=(7, utc(2023, 12, 28, 16, 40, 5)),  # "YYYY-MM-DD HH:MM:SS", taken as UTC
        detail=(4, "SendGrid bounce 5.0.0: 550 Requested action not taken: mailbox unavailable"),
    ),
    "sendgrid-spam-reports.csv": Expected(
        format="sendgrid-spam-reports",
        rows=5,
        reasons=["complaint"] * 5,
        created_at=(4, utc(2023, 12, 14, 8, 3, 51)),
        detail=(2, "SendGrid spam report (sent from 149.72.120.130)"),
    ),
    "mailgun-bounces.csv": Expected(
        format="mailgun-bounces",
        rows=6,
        reasons=["hard_bounce", "hard_bounce", "soft_bounce", "hard_bounce", "hard_bounce"],
        bad={6: "unparseable date 'yesterday'"},
        created_at=(2, utc(2024, 3, 7, 10, 15, 32)),  # RFC 2822, "... UTC"
        detail=(2, "Mailgun bounce 550: No such user"),
    ),
    "mailgun-unsubscribes.csv": Expected(
        format="mailgun-unsubscribes",
        rows=5,
        reasons=["unsubscribe"] * 5,
        created_at=(6, None),  # empty cell
        detail=(3, "Mailgun unsubscribe from tag 'newsletter'"),
    ),
    "mailgun-complaints.csv": Expected(
        format="mailgun-complaints",
        rows=5,
        reasons=["complaint"] * 5,
        created_at=(3, utc(2024, 4, 16, 22, 10, 5)),  # RFC 2822, "... GMT"
        detail=(3, "Mailgun complaint"),
    ),
    "postmark-suppressions.csv": Expected(
        format="postmark",
        rows=6,
        reasons=[
            "hard_bounce",
            "complaint",
            "unsubscribe",
            "unsubscribe",
            "hard_bounce",
            "unsubscribe",
        ],
        created_at=(2, utc(2024, 2, 1, 13, 58, 33)),  # 08:58:33-05:00
        detail=(5, "Postmark ManualSuppression (origin Customer)"),
    ),
    "ses-suppression-list.csv": Expected(
        format="ses",
        rows=5,
        reasons=["hard_bounce", "complaint", "hard_bounce", "complaint", "hard_bounce"],
        created_at=(6, utc(2024, 2, 11, 20, 0, 48, 250000)),  # 12:00:48.25-08:00
        detail=(3, "SES suppression COMPLAINT"),
    ),
    "mailchimp-unsubscribed.csv": Expected(
        format="mailchimp-unsubscribed",
        rows=5,
        reasons=["unsubscribe"] * 5,
        created_at=(3, utc(2024, 1, 16, 7, 5, 43)),
        detail=(3, "Mailchimp unsubscribed via 'Winter Sale 2024': Other (Too many emails)"),
    ),
    "mailchimp-cleaned.csv": Expected(
        format="mailchimp-cleaned",
        rows=5,
        reasons=["hard_bounce"] * 5,
        created_at=(4, utc(2024, 1, 30, 23, 59, 59)),
        detail=(5, "Mailchimp cleaned"),
    ),
    "generic.csv": Expected(
        format="generic",
        rows=9,  # the blank line 10 is skipped
        reasons=["manual", "unsubscribe", "complaint", "unsubscribe", "erasure", "hard_bounce"],
        bad={
            7: "unknown reason 'foo'",
            8: "no email address",
            9: "unparseable date '31/31/2020'",
        },
        created_at=(6, utc(2024, 5, 4, 8, 15, 0)),  # 10:15+02:00
        detail=(2, ""),
    ),
}


def test_every_sample_is_covered():
    assert sorted(EXPECTED) == sorted(path.name for path in SAMPLES.glob("*.csv"))
    assert {e.format for e in EXPECTED.values()} == set(FORMATS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_is_detected(name):
    fmt, _ = read_sample(name)
    assert fmt.name == EXPECTED[name].format
    assert fmt is FORMATS[fmt.name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_rows(name):
    expected = EXPECTED[name]
    _, rows = read_sample(name)
    by_line = {row.line: row for row in rows}

    assert len(rows) == expected.rows
    assert [row.reason for row in rows if row.error is None] == expected.reasons
    assert {row.line: row.error for row in rows if row.error is not None} == expected.bad
    line, created_at = expected.created_at
    assert by_line[line].created_at == created_at
    line, detail = expected.detail
    assert by_line[line].source_detail == detail


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_row_invariants(name):
    _, rows = read_sample(name)
    lines = [row.line for row in rows]
    assert lines == sorted(set(lines)) and lines[0] == 2
    for row in rows:
        if row.error is None:
            assert row.reason in REASONS
            assert row.email and row.email == row.email.strip()
            assert row.created_at is None or row.created_at.utcoffset().total_seconds() == 0
        else:
            assert row.reason is None
    if EXPECTED[name].format != "generic":
        assert all(row.scope is None for row in rows)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_naming_the_detected_format_reads_the_same(name):
    fmt, rows = read_sample(name)
    assert read_sample(name, format_name=fmt.name) == (fmt, rows)


def test_generic_scope_is_kept_as_written():
    _, rows = read_sample("generic.csv")
    by_line = {row.line: row for row in rows}
    assert [by_line[n].scope for n in (2, 3, 4, 5, 11)] == [
        "global",
        "commercial",
        "stream:marketing",
        "topic:marketing/news",
        None,
    ]


def test_email_is_kept_as_found_apart_from_surrounding_space():
    _, rows = read_text("email,reason\n  Mixed.Case+tag@Example.COM ,unsubscribe\n")
    assert rows[0].email == "Mixed.Case+tag@Example.COM"


# Header variations


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (["EMAIL", " Created "], "sendgrid-unsubscribes"),
        (["\ufeffemail", "created", "status", "reason"], "sendgrid-bounces"),
        (["reason", "status", "created", "email"], "sendgrid-bounces"),
        (["Email", "Created", "IP", "Campaign"], "sendgrid-spam-reports"),
        (["Address", "Code", "Error", "Created_At"], "mailgun-bounces"),
        (["address", "code", "error"], "mailgun-bounces"),
        (["address", "tags"], "mailgun-unsubscribes"),
        (["ADDRESS", "CREATED_AT", "domain"], "mailgun-complaints"),
        (["Email Address", "Reason", "Origin", "Created At"], "postmark"),
        (["emailaddress", "suppressionreason", "origin"], "postmark"),
        (["Email Address", "Reason", "Last Update Time", "Note"], "ses"),
        (["\ufeffEmail Address", "First Name", "unsub_time"], "mailchimp-unsubscribed"),
        (["email address", "clean time", "clean campaign title"], "mailchimp-cleaned"),
        (["email"], "generic"),
        (["Email_Address", "Scope"], "generic"),
        (["address", "reason", "created_at"], "generic"),
        (["E-mail notes", "x"], None),
    ],
)
def test_header_variations(header, expected):
    if expected is None:
        with pytest.raises(UnknownFormat):
            detect_format(header)
    else:
        assert detect_format(header).name == expected


def test_bom_case_spaces_and_extra_columns_read_like_the_plain_file():
    plain = "email,reason,scope,created_at\nann@example.com,complaint,global,2024-01-02T03:04:05Z\n"
    varied = (
        "\ufeff Email ,NOTES, REASON ,Scope,Created_At,Source\n"
        "ann@example.com,called us,complaint,global,2024-01-02T03:04:05Z,crm\n"
    )
    assert read_text(varied)[1] == read_text(plain)[1]


def test_provider_columns_are_found_wherever_they_are():
    text = (
        "reason,ip_pool,status,email,created\n"
        '"550 5.1.1 User unknown",pool-a,5.1.1,sam@example.com,1700000000\n'
    )
    fmt, rows = read_text(text)
    assert fmt.name == "sendgrid-bounces"
    assert rows[0].email == "sam@example.com"
    assert rows[0].reason == "hard_bounce"
    assert rows[0].created_at == utc(2023, 11, 14, 22, 13, 20)
    assert rows[0].source_detail == "SendGrid bounce 5.1.1: 550 5.1.1 User unknown"


def test_bom_in_a_file_opened_without_utf8_sig(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes("email,created\nbea@example.com,1700000000\n".encode("utf-8-sig"))
    with path.open(newline="", encoding="utf-8") as handle:
        fmt, rows = read_rows(handle)
        assert fmt.name == "sendgrid-unsubscribes"
        assert [row.email for row in rows] == ["bea@example.com"]


# Unknown and mismatching headers


def test_unknown_header_names_the_known_formats_and_the_header():
    with pytest.raises(UnknownFormat) as caught:
        read_rows(["Name,Phone\n", "Ann,555\n"])
    message = str(caught.value)
    assert "['Name', 'Phone']" in message
    for name in FORMATS:
        assert name in message


def test_unknown_format_is_a_value_error():
    assert issubclass(UnknownFormat, ValueError)


def test_empty_file_has_no_header():
    with pytest.raises(UnknownFormat, match="no header row"):
        read_rows(["\n", "  \n"])


def test_forcing_a_format_the_header_does_not_fit_raises():
    with pytest.raises(UnknownFormat) as caught:
        read_rows(["email,created\n", "a@example.com,1\n"], format_name="sendgrid-bounces")
    message = str(caught.value)
    assert "sendgrid-bounces" in message
    assert "status" in message and "reason" in message


def test_forcing_generic_needs_the_address_first():
    with pytest.raises(UnknownFormat, match="first column"):
        read_rows(["reason,email\n"], format_name="generic")


def test_forcing_an_unknown_format_name_raises_with_the_known_names():
    with pytest.raises(UnknownFormat) as caught:
        read_rows(["email\n"], format_name="sendgrid")
    assert "'sendgrid'" in str(caught.value)
    assert "mailchimp-cleaned" in str(caught.value)


def test_a_mailchimp_subscribed_export_is_never_read_as_suppressions():
    header = (
        "Email Address,First Name,Last Name,Address,Phone Number,MEMBER_RATING,OPTIN_TIME,"
        "OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LAST_CHANGED,LEID,EUID,NOTES,TAGS"
    )
    with pytest.raises(UnknownFormat):
        detect_format(next(csv.reader([header])))


def test_sendgrid_invalid_emails_are_not_taken_for_unsubscribes():
    with pytest.raises(UnknownFormat):
        detect_format(["email", "created", "reason"])


def test_address_and_created_at_alone_read_as_mailgun_complaints_unless_told_otherwise():
    text = "address,created_at\nkim@example.com,2024-01-01T00:00:00Z\n"
    fmt, rows = read_text(text)
    assert (fmt.name, rows[0].reason) == ("mailgun-complaints", "complaint")
    fmt, rows = read_text(text, format_name="generic")
    assert (fmt.name, rows[0].reason) == ("generic", "manual")


# Bad rows


def test_too_few_columns_is_a_bad_row_not_an_exception():
    text = "email,created,status,reason\nann@example.com,1700000000\nbob@example.com,,5.1.1,x\n"
    _, rows = read_text(text)
    assert [(row.line, row.email, row.error) for row in rows] == [
        (2, "ann@example.com", "too few columns: expected 4, found 2"),
        (3, "bob@example.com", None),
    ]


def test_blank_lines_and_empty_cells_only_rows_are_skipped():
    text = "email,reason\n\nann@example.com,manual\n   \n,\n ,  \nbob@example.com,\n"
    _, rows = read_text(text)
    assert [(row.line, row.email, row.reason) for row in rows] == [
        (3, "ann@example.com", "manual"),
        (7, "bob@example.com", "manual"),
    ]


def test_line_numbers_count_the_lines_of_quoted_multi_line_fields():
    text = (
        "email,created,status,reason\n"
        'ann@example.com,1700000000,5.1.1,"550 first line\nsecond line"\n'
        "bob@example.com,1700000000,4.2.2,full\n"
    )
    _, rows = read_text(text)
    assert [(row.line, row.reason) for row in rows] == [(2, "hard_bounce"), (4, "soft_bounce")]
    assert rows[0].source_detail == "SendGrid bounce 5.1.1: 550 first line second line"


def test_generic_reasons():
    text = (
        "email,reason\n"
        "a@example.com,\n"
        "b@example.com,  \n"
        "c@example.com, Objection \n"
        "d@example.com,soft_bounce\n"
        "e@example.com,bounce\n"
    )
    _, rows = read_text(text)
    assert [(row.reason, row.error) for row in rows] == [
        ("manual", None),
        ("manual", None),
        ("objection", None),
        ("soft_bounce", None),
        (None, "unknown reason 'bounce'"),
    ]


def test_generic_without_reason_column_is_manual():
    _, rows = read_text("address\nann@example.com\n")
    assert [(row.reason, row.scope, row.created_at) for row in rows] == [("manual", None, None)]


@pytest.mark.parametrize(
    ("status", "reason", "error"),
    [
        ("5.1.1", "hard_bounce", None),
        ("5.7.1", "hard_bounce", None),
        ("", "hard_bounce", None),
        ("4.4.7", "soft_bounce", None),
        ("2.0.0", None, "unrecognised bounce status '2.0.0'"),
    ],
)
def test_sendgrid_bounce_status(status, reason, error):
    _, rows = read_text(f"email,created,status,reason\nann@example.com,,{status},text\n")
    assert (rows[0].reason, rows[0].error) == (reason, error)


@pytest.mark.parametrize(
    ("code", "reason", "error"),
    [
        ("550", "hard_bounce", None),
        ("554", "hard_bounce", None),
        ("", "hard_bounce", None),
        ("421", "soft_bounce", None),
        ("452", "soft_bounce", None),
        ("OK", None, "unrecognised bounce code 'OK'"),
    ],
)
def test_mailgun_bounce_code(code, reason, error):
    _, rows = read_text(f"address,code,error,created_at\nann@example.com,{code},text,\n")
    assert (rows[0].reason, rows[0].error) == (reason, error)


def test_unknown_provider_reasons_are_bad_rows():
    _, postmark = read_text(
        "EmailAddress,SuppressionReason,Origin,CreatedAt\na@example.com,SoftBounce,Recipient,\n"
    )
    _, ses = read_text("EmailAddress,Reason,LastUpdateTime\nb@example.com,OOTO,\n")
    assert postmark[0].error == "unknown reason 'SoftBounce'"
    assert ses[0].error == "unknown reason 'OOTO'"


def test_an_unreadable_record_is_a_bad_row_and_reading_goes_on():
    limit = csv.field_size_limit()
    csv.field_size_limit(50)
    try:
        _, rows = read_text(f"email,reason\nann@example.com,{'x' * 60}\nbob@example.com,manual\n")
    finally:
        csv.field_size_limit(limit)
    assert rows[0].line == 2
    assert rows[0].error.startswith("unreadable CSV")
    assert [(row.line, row.email, row.reason) for row in rows[1:]] == [
        (3, "bob@example.com", "manual")
    ]


def test_long_provider_text_is_cut():
    _, rows = read_text(f"address,code,error\nann@example.com,550,{'y' * 500}\n")
    assert len(rows[0].source_detail) == 200
    assert rows[0].source_detail.startswith("Mailgun bounce 550: yyy")
    assert rows[0].source_detail.endswith("...")


# Dates


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-01-02T03:04:05Z", utc(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02T03:04:05+00:00", utc(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02T05:04:05.250+02:00", utc(2024, 1, 2, 3, 4, 5, 250000)),
        ("2019-12-17T08:58:33-05:00", utc(2019, 12, 17, 13, 58, 33)),
        ("2024-01-02T03:04:05", utc(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02 03:04:05", utc(2024, 1, 2, 3, 4, 5)),
        (" 2024-01-02 03:04:05 ", utc(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02 03:04:05 UTC", utc(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02", utc(2024, 1, 2)),
        ("1704164645", utc(2024, 1, 2, 3, 4, 5)),
        ("1704164645.5", utc(2024, 1, 2, 3, 4, 5, 500000)),
        ("Tue, 02 Jan 2024 03:04:05 GMT", utc(2024, 1, 2, 3, 4, 5)),
        ("Tue, 02 Jan 2024 04:04:05 +0100", utc(2024, 1, 2, 3, 4, 5)),
        ("02 Jan 2024 03:04:05 UTC", utc(2024, 1, 2, 3, 4, 5)),
        ("", None),
        ("   ", None),
    ],
)
def test_parse_time(raw, expected):
    value = parse_time(raw)
    assert value == expected
    if value is not None:
        assert value.tzinfo is UTC


@pytest.mark.parametrize("raw", ["31/31/2020", "12/31/2023", "yesterday", "2024-13-01", "99" * 20])
def test_unparseable_dates_make_bad_rows(raw):
    _, rows = read_text(f"email,created_at\nann@example.com,{raw}\n")
    assert (rows[0].reason, rows[0].created_at) == (None, None)
    assert rows[0].error == f"unparseable date '{raw}'"


# Rows and streaming


def test_rows_built_by_the_reader_equal_rows_built_by_the_dataclass():
    _, rows = read_text("email,reason,scope,created_at\nann@example.com,legal,global,1700000000\n")
    row = rows[0]
    built = ImportRow(
        line=2,
        email="ann@example.com",
        reason="legal",
        scope="global",
        created_at=utc(2023, 11, 14, 22, 13, 20),
        error=None,
        source_detail="",
    )
    assert row == built and hash(row) == hash(built) and repr(row) == repr(built)
    assert dataclasses.asdict(row) == dataclasses.asdict(built)
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.reason = "manual"  # type: ignore[misc]


def counting_lines(total: int, consumed: list[int]) -> Iterator[str]:
    consumed.append(0)
    yield "email,reason,scope,created_at\n"
    for number in range(total):
        consumed[0] += 1
        yield f"user{number}@example.com,unsubscribe,global,2024-01-02T03:04:05Z\n"


def test_rows_are_read_lazily():
    consumed: list[int] = []
    fmt, rows = read_rows(counting_lines(100_000, consumed))
    assert fmt.name == "generic"
    assert consumed == [0]  # only the header so far

    first = next(rows)
    assert (first.line, first.email) == (2, "user0@example.com")
    assert consumed[0] <= 2

    for _ in range(9):
        next(rows)
    assert consumed[0] <= 11


def test_streamed_rows_all_come_through():
    consumed: list[int] = []
    _, rows = read_rows(counting_lines(100_000, consumed))
    count = sum(1 for row in rows if row.error is None)
    assert count == 100_000
    assert consumed == [100_000]


def test_this_services_own_export_header_reads_as_generic():
    header = ["email", "reason", "scope", "created_at", "tenant", "origin"]
    assert detect_format(header).name == "generic"
