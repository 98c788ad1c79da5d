"""Reading suppression-list CSV exports from email providers into typed rows.

Each supported export is one entry of `FORMATS`: the columns it is recognised by, and how one
data row turns into a reason from `REASONS`. `read_rows` reads the header, picks the format (or
takes the one named), and streams one `ImportRow` per data row; a row that cannot be used is
reported with its line number and why, never raised, so one bad line does not stop an import.

Pure Python on purpose (no Django): it only reads files; normalising addresses, resolving
scopes and storing entries belong to the importer that consumes these rows.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

REASONS = (
    "hard_bounce",
    "invalid",
    "complaint",
    "unsubscribe",
    "objection",
    "erasure",
    "manual",
    "legal",
    "soft_bounce",
)
_REASON_SET = frozenset(REASONS)

# Provider text kept as evidence is cut here: a bounce reason can be a whole SMTP transcript.
_DETAIL_MAX = 200

# Verdicts of one-column classifiers are remembered per distinct cell (reason columns hold a
# handful of values), up to this many so that a column of unique texts cannot grow it.
_SINGLE_MEMO = 1024

# Good rows are built by filling the instance dict in one step. The frozen dataclass __init__
# sets each of the seven fields through object.__setattr__, which at a million rows costs about
# as much as reading the CSV; the result is the same ordinary, frozen, comparable ImportRow
# (a test holds the two ways equal).
_fill = object.__setattr__


@dataclass(frozen=True)
class ImportRow:
    """One data row of an export: a usable entry (`error` is None) or a bad row."""

    line: int
    email: str
    reason: str | None
    scope: str | None
    created_at: datetime | None
    error: str | None
    source_detail: str


@dataclass(frozen=True)
class Column:
    """A column a format reads: its role, the header names accepted for it (normalised, see
    `normalise_header_name`), whether the format is recognised only when it is present, and the
    name shown in messages."""

    role: str
    names: tuple[str, ...]
    required: bool
    label: str


# Roles the reader itself handles; every other column of a format is handed to its `classify`.
_EMAIL, _CREATED_AT, _SCOPE = "email", "created_at", "scope"

# classify(*values of the format's other columns, in table order) -> (reason, source_detail);
# raises _BadValue for a row that cannot be classified.
Classifier = Callable[..., tuple[str, str]]


# Mailchimp audience exports carry these on every status file, "subscribed" included, next to
# merge fields such as "Address" and "TAGS" that look like other providers' columns. A file with
# them is only ever read as one of the Mailchimp formats: the subscribed list must never turn
# into suppressions.
_MAILCHIMP_MEMBER_COLUMNS = frozenset({"memberrating", "optintime", "leid", "euid"})


# A `scope` column is this service's own (its exports carry it); no provider export has one, so a
# file with it is read as the generic format even when other columns look like a provider's.
_OWN_COLUMNS = frozenset({"scope"})


@dataclass(frozen=True)
class ImportFormat:
    """One provider export: how its header is recognised and how a row becomes a reason."""

    name: str
    label: str
    columns: tuple[Column, ...]
    classify: Classifier
    # Columns whose presence means the file is some other export that only looks alike; by
    # default the Mailchimp member columns, which only the Mailchimp formats accept.
    excluded: frozenset[str] = _MAILCHIMP_MEMBER_COLUMNS | _OWN_COLUMNS
    # The address column must come first (the generic format says so; it keeps arbitrary
    # spreadsheets that merely have an "email" column somewhere from being taken for it).
    email_first: bool = False
    # Where the header comes from, for whoever has to update it.
    source: str = ""


class UnknownFormat(ValueError):
    """The header fits no known export, or not the format that was asked for."""


class _BadValue(ValueError):
    """A cell that makes its row unusable; the message becomes ImportRow.error."""


def normalise_header_name(name: str) -> str:
    """Header names compare without case, whitespace, underscores or a UTF-8 BOM, so that
    `Email Address`, `EmailAddress`, `email_address` and `\\ufeffEMAIL ADDRESS` are one name."""
    return "".join(name.replace("\ufeff", "").split()).replace("_", "").lower()


def _columns(**specs: str) -> tuple[Column, ...]:
    """`role="Name|Other name"`; a trailing `?` marks a column the format can do without."""
    columns = []
    for role, spec in specs.items():
        required = not spec.endswith("?")
        labels = spec.rstrip("?").split("|")
        names = tuple(normalise_header_name(label) for label in labels)
        columns.append(Column(role, names, required, labels[0]))
    return tuple(columns)


def _detail(prefix: str, code: str = "", text: str = "") -> str:
    code, text = code.strip(), " ".join(text.split())
    detail = f"{prefix} {code}" if code else prefix
    if text:
        detail = f"{detail}: {text}"
    return detail if len(detail) <= _DETAIL_MAX else detail[: _DETAIL_MAX - 3] + "..."


def _bounce_class(code: str, what: str) -> str:
    """5xx / 5.x.x or no code: permanent; 4xx / 4.x.x: transient. Both SendGrid (enhanced
    status `5.1.1`) and Mailgun (SMTP code `550`) lead with the class digit."""
    code = code.strip()
    if not code or code[0] == "5":
        return "hard_bounce"
    if code[0] == "4":
        return "soft_bounce"
    raise _BadValue(f"unrecognised bounce {what} '{code}'")


# Classifiers, one per format: the policy for turning a provider's row into one of REASONS.


def _generic(reason: str) -> tuple[str, str]:
    # No reason means an entry someone put on the list by hand: "manual", never "let the
    # importer decide", so the stored reason is always explicit.
    if reason in _REASON_SET:
        return reason, ""
    key = reason.strip().lower()
    if not key:
        return "manual", ""
    if key in _REASON_SET:
        return key, ""
    raise _BadValue(f"unknown reason '{reason.strip()}'")


def _sendgrid_unsubscribe() -> tuple[str, str]:
    return "unsubscribe", "SendGrid global unsubscribe"


def _sendgrid_bounce(status: str, text: str) -> tuple[str, str]:
    return _bounce_class(status, "status"), _detail("SendGrid bounce", status, text)


def _sendgrid_spam_report(ip: str) -> tuple[str, str]:
    ip = ip.strip()
    return "complaint", f"SendGrid spam report (sent from {ip})" if ip else "SendGrid spam report"


def _mailgun_bounce(code: str, error: str) -> tuple[str, str]:
    return _bounce_class(code, "code"), _detail("Mailgun bounce", code, error)


def _mailgun_unsubscribe(tags: str) -> tuple[str, str]:
    # Mailgun's `*` (or no tag) means every mail from the domain; a tag is kept as evidence
    # only, since provider tags do not map onto this service's scopes.
    tags = tags.strip()
    if tags in ("", "*"):
        return "unsubscribe", "Mailgun unsubscribe (all mail)"
    return "unsubscribe", _detail(f"Mailgun unsubscribe from tag '{tags}'")


def _mailgun_complaint() -> tuple[str, str]:
    return "complaint", "Mailgun complaint"


_POSTMARK_REASONS = {
    "hardbounce": "hard_bounce",
    "spamcomplaint": "complaint",
    # Postmark records an unsubscribe-link click (Origin "Recipient") and an address the sender
    # suppressed (Origin "Customer" / "Admin") both as ManualSuppression; both count as an
    # unsubscribe here, and the origin stays in source_detail.
    "manualsuppression": "unsubscribe",
}


def _postmark(value: str, origin: str) -> tuple[str, str]:
    value, origin = value.strip(), origin.strip()
    reason = _POSTMARK_REASONS.get("".join(value.split()).lower())
    if reason is None:
        raise _BadValue(f"unknown reason '{value}'")
    return reason, f"Postmark {value} (origin {origin})" if origin else f"Postmark {value}"


_SES_REASONS = {"BOUNCE": "hard_bounce", "COMPLAINT": "complaint"}


def _ses(value: str) -> tuple[str, str]:
    value = value.strip()
    reason = _SES_REASONS.get(value.upper())
    if reason is None:
        raise _BadValue(f"unknown reason '{value}'")
    return reason, f"SES suppression {value.upper()}"


def _mailchimp_unsubscribed(why: str, other: str, campaign: str) -> tuple[str, str]:
    why, other = why.strip(), other.strip()
    why = f"{why} ({other})" if why and other else why or other
    campaign = campaign.strip()
    prefix = f"Mailchimp unsubscribed via '{campaign}'" if campaign else "Mailchimp unsubscribed"
    return "unsubscribe", _detail(prefix, text=why)


def _mailchimp_cleaned(campaign: str) -> tuple[str, str]:
    # Mailchimp cleans an address after a hard bounce or repeated soft bounces; either way it
    # stopped mailing it as undeliverable.
    campaign = campaign.strip()
    detail = f"Mailchimp cleaned after '{campaign}'" if campaign else "Mailchimp cleaned"
    return "hard_bounce", _detail(detail)


# Every known export, in detection order: the first entry whose columns fit the header wins, so
# more specific headers come before ones they contain, and "generic" comes last. Mailchimp goes
# first: its wide exports contain columns named like other providers' ("Address", "TAGS").
FORMATS: dict[str, ImportFormat] = {
    fmt.name: fmt
    for fmt in (
        # Mailchimp audience export, unsubscribed_members_export_*.csv: "Email Address", the
        # audience's merge fields, then MEMBER_RATING, OPTIN_TIME, ..., UNSUB_TIME,
        # UNSUB_CAMPAIGN_TITLE, UNSUB_CAMPAIGN_ID, UNSUB_REASON, UNSUB_REASON_OTHER, LEID, EUID,
        # NOTES, TAGS (the column list of real exports, as quoted in public code that reads
        # them). Times are "YYYY-MM-DD HH:MM:SS" in UTC.
        ImportFormat(
            name="mailchimp-unsubscribed",
            label="Mailchimp unsubscribed contacts",
            columns=_columns(
                email="Email Address",
                created_at="UNSUB_TIME",
                why="UNSUB_REASON?",
                other="UNSUB_REASON_OTHER?",
                campaign="UNSUB_CAMPAIGN_TITLE?",
            ),
            classify=_mailchimp_unsubscribed,
            excluded=frozenset(),
            source="Mailchimp audience export, unsubscribed members",
        ),
        # cleaned_members_export_*.csv: as above with CLEAN_TIME, CLEAN_CAMPAIGN_TITLE,
        # CLEAN_CAMPAIGN_ID in place of the UNSUB_ columns.
        ImportFormat(
            name="mailchimp-cleaned",
            label="Mailchimp cleaned contacts",
            columns=_columns(
                email="Email Address", created_at="CLEAN_TIME", campaign="CLEAN_CAMPAIGN_TITLE?"
            ),
            classify=_mailchimp_cleaned,
            excluded=frozenset(),
            source="Mailchimp audience export, cleaned members",
        ),
        # SendGrid Bounces "Download CSV": email, created, status, reason. Confirmed by
        # SparkPost's SendGrid migration notes (SparkPost/sparkpost-cli,
        # sendgrid-suppresions.md: bounces "remove status and reason column" to leave
        # email,created). A Blocks download, if it carries the same columns (its API fields
        # are the same), cannot be told apart by the header.
        ImportFormat(
            name="sendgrid-bounces",
            label="SendGrid bounces",
            columns=_columns(email="email", created_at="created", status="status", reason="reason"),
            classify=_sendgrid_bounce,
            source="SendGrid Bounces > Download CSV",
        ),
        # SendGrid Spam Reports download: email, created, ip (same SparkPost notes: "remove ip
        # column").
        ImportFormat(
            name="sendgrid-spam-reports",
            label="SendGrid spam reports",
            columns=_columns(email="email", created_at="created", ip="ip"),
            classify=_sendgrid_spam_report,
            source="SendGrid Spam Reports > Download CSV",
        ),
        # SendGrid Global Unsubscribes download: email, created (same SparkPost notes: imported
        # "without any modification" by a reader of email,created). SendGrid's invalid-email
        # download adds `reason`, which is not an unsubscribe, hence the exclusion.
        ImportFormat(
            name="sendgrid-unsubscribes",
            label="SendGrid global unsubscribes",
            columns=_columns(email="email", created_at="created"),
            classify=_sendgrid_unsubscribe,
            excluded=_MAILCHIMP_MEMBER_COLUMNS | {"reason", "status", "ip"},
            source="SendGrid Global Unsubscribes > Download CSV",
        ),
        # Mailgun suppression CSVs: the column headers Mailgun documents for its CSV import
        # endpoints (documentation.mailgun.com, POST /v3/{domain}/bounces/import: "address,
        # code, error, created_at", created_at in RFC 2822). Its dashboard download could not
        # be checked and is taken to use the same names. code and error are what set the
        # bounce list apart from the other two.
        ImportFormat(
            name="mailgun-bounces",
            label="Mailgun bounces",
            columns=_columns(email="address", created_at="created_at?", code="code", error="error"),
            classify=_mailgun_bounce,
            source="Mailgun bounces CSV (address, code, error, created_at)",
        ),
        # POST /v3/{domain}/unsubscribes/import: "address, tags, created_at".
        ImportFormat(
            name="mailgun-unsubscribes",
            label="Mailgun unsubscribes",
            columns=_columns(email="address", created_at="created_at?", tags="tags"),
            classify=_mailgun_unsubscribe,
            source="Mailgun unsubscribes CSV (address, tags, created_at)",
        ),
        # POST /v3/{domain}/complaints/import: "address, created_at". A generic file with
        # exactly those two columns reads the same; Mailgun's documented form wins (force
        # format_name="generic" for the other reading). Any generic reason/scope column, or a
        # Mailgun bounce/unsubscribe column, rules this one out.
        ImportFormat(
            name="mailgun-complaints",
            label="Mailgun complaints",
            columns=_columns(email="address", created_at="created_at"),
            classify=_mailgun_complaint,
            excluded=_MAILCHIMP_MEMBER_COLUMNS | {"reason", "scope", "code", "error", "tags"},
            source="Mailgun complaints CSV (address, created_at)",
        ),
        # Postmark suppressions: the fields of its suppression dump (postmarkapp.com,
        # GET /message-streams/{stream}/suppressions/dump: EmailAddress, SuppressionReason,
        # Origin, CreatedAt; reasons HardBounce, SpamComplaint, ManualSuppression). The exact
        # column titles of the dashboard's CSV download could not be confirmed, so the spaced
        # titles ("Email Address", "Reason", "Created At") are accepted as well; `Origin` is
        # what tells this export from the others.
        ImportFormat(
            name="postmark",
            label="Postmark suppressions",
            columns=_columns(
                email="EmailAddress|Email|Recipient",
                created_at="CreatedAt|Suppressed At|Date?",
                value="SuppressionReason|Reason",
                origin="Origin",
            ),
            classify=_postmark,
            source="Postmark suppression dump (EmailAddress, SuppressionReason, Origin, CreatedAt)",
        ),
        # Amazon SES account-level suppression list. SES offers no CSV download of it; it comes
        # from `aws sesv2 list-suppressed-destinations` (ListSuppressedDestinations), whose
        # SuppressedDestinationSummary fields EmailAddress, Reason (BOUNCE | COMPLAINT) and
        # LastUpdateTime are taken as the header of the flattened file. Not a documented CSV:
        # an assumption, written down here.
        ImportFormat(
            name="ses",
            label="Amazon SES account suppression list",
            columns=_columns(email="EmailAddress", created_at="LastUpdateTime", value="Reason"),
            classify=_ses,
            source="aws sesv2 list-suppressed-destinations (EmailAddress, Reason, LastUpdateTime)",
        ),
        # This service's own form: email[,reason][,scope][,created_at], first column `email`
        # (or `address` / `email_address`). `created` belongs to SendGrid downloads this module
        # does not know (invalid emails); those are refused rather than misread.
        ImportFormat(
            name="generic",
            label="Generic suppression list",
            columns=_columns(
                email="email|address|email_address",
                value="reason?",
                scope="scope?",
                created_at="created_at?",
            ),
            classify=_generic,
            excluded=_MAILCHIMP_MEMBER_COLUMNS | {"created"},
            email_first=True,
            source="email[,reason][,scope][,created_at]",
        ),
    )
}


def _known() -> str:
    return ", ".join(FORMATS)


def _index(fmt: ImportFormat, names: list[str]) -> dict[str, int]:
    """Role -> position of the first header cell that fits it, for the columns present."""
    positions: dict[str, int] = {}
    for column in fmt.columns:
        for position, name in enumerate(names):
            if name in column.names:
                positions[column.role] = position
                break
    return positions


def _missing(fmt: ImportFormat, names: list[str], positions: dict[str, int]) -> list[str]:
    missing = [c.label for c in fmt.columns if c.required and c.role not in positions]
    if fmt.email_first and positions.get(_EMAIL, 0) != 0:
        missing.append(f"{fmt.columns[0].label} (as the first column)")
    return missing


def _fits(fmt: ImportFormat, names: list[str]) -> bool:
    if fmt.excluded.intersection(names):
        return False
    return not _missing(fmt, names, _index(fmt, names))


def detect_format(header: list[str]) -> ImportFormat:
    """The format whose columns fit `header` (raw header cells, as read)."""
    names = [normalise_header_name(cell) for cell in header]
    for fmt in FORMATS.values():
        if _fits(fmt, names):
            return fmt
    raise UnknownFormat(f"unrecognised header {header!r}; known formats: {_known()}")


def _named_format(name: str, header: list[str]) -> ImportFormat:
    fmt = FORMATS.get(name)
    if fmt is None:
        raise UnknownFormat(f"unknown format '{name}'; known formats: {_known()}")
    names = [normalise_header_name(cell) for cell in header]
    missing = _missing(fmt, names, _index(fmt, names))
    if missing:
        raise UnknownFormat(
            f"header {header!r} does not fit format '{name}': missing "
            f"{', '.join(missing)}; known formats: {_known()}"
        )
    return fmt


def read_rows(
    lines: Iterable[str], *, format_name: str | None = None
) -> tuple[ImportFormat, Iterator[ImportRow]]:
    """Read the header from `lines` (an open text file or any iterable of lines), recognise the
    format (or check the header against `format_name`), and return it with a lazy iterator of
    the data rows. Raises UnknownFormat at once; the rows are read only as they are consumed."""
    reader = csv.reader(lines)
    header = _header(reader)
    if format_name is None:
        fmt = detect_format(header)
    else:
        fmt = _named_format(format_name, header)
    names = [normalise_header_name(cell) for cell in header]
    return fmt, _rows(reader, fmt, _plan(fmt, _index(fmt, names)))


def _header(reader: Any) -> list[str]:
    for row in reader:
        if any(cell.strip() for cell in row):
            return row
    raise UnknownFormat(f"no header row (empty file); known formats: {_known()}")


@dataclass(frozen=True)
class _Plan:
    """Where one file's columns are, worked out once from its header."""

    email_at: int
    time_at: int  # -1: the file has no time column
    scope_at: int  # -1: no scope column
    value_at: tuple[int, ...]  # classify's arguments; -1 for an absent column, read as ""
    width: int  # a record shorter than this lacks a column the format reads
    constant: tuple[str, str] | None  # the verdict for every row when no argument is present


def _plan(fmt: ImportFormat, positions: dict[str, int]) -> _Plan:
    special = (_EMAIL, _CREATED_AT, _SCOPE)
    value_at = tuple(positions.get(c.role, -1) for c in fmt.columns if c.role not in special)
    constant = None
    if all(at < 0 for at in value_at):
        try:
            constant = fmt.classify(*[""] * len(value_at))
        except _BadValue:
            pass  # left to each row, which then reports it
    return _Plan(
        email_at=positions[_EMAIL],
        time_at=positions.get(_CREATED_AT, -1),
        scope_at=positions.get(_SCOPE, -1),
        value_at=value_at,
        width=max(positions.values()) + 1,
        constant=constant,
    )


def _rows(reader: Any, fmt: ImportFormat, plan: _Plan) -> Iterator[ImportRow]:
    """The data rows, in one pass. Everything that depends only on the header is in `plan`;
    this loop runs once per line of files that can hold millions of them, so it keeps to
    local names and avoids calls it can do without (see `_SINGLE_MEMO`, `_fill`)."""
    email_at, time_at, scope_at, width = plan.email_at, plan.time_at, plan.scope_at, plan.width
    value_at, constant, classify = plan.value_at, plan.constant, fmt.classify
    single = value_at[0] if len(value_at) == 1 else -1
    memo: dict[str, tuple[str, str]] = {}
    new, fill, row_type = object.__new__, _fill, ImportRow
    last = reader.line_num
    while True:
        try:
            for row in reader:
                line = last + 1  # where the record starts; a quoted field can span lines
                last = reader.line_num
                email = row[email_at].strip() if len(row) >= width else ""
                if not email:
                    bad = _short_or_empty(line, row, email_at, width)
                    if bad is not None:
                        yield bad
                    continue
                try:
                    if constant is not None:
                        reason, detail = constant
                    elif single >= 0:
                        value = row[single]
                        verdict = memo.get(value)
                        if verdict is None:
                            verdict = classify(value)
                            if len(memo) < _SINGLE_MEMO:
                                memo[value] = verdict
                        reason, detail = verdict
                    else:
                        reason, detail = classify(*[row[i] if i >= 0 else "" for i in value_at])
                    created_at = parse_time(row[time_at]) if time_at >= 0 else None
                except _BadValue as exc:
                    yield ImportRow(line, email, None, None, None, str(exc), "")
                    continue
                scope = (row[scope_at].strip() or None) if scope_at >= 0 else None
                good = new(row_type)
                fill(
                    good,
                    "__dict__",
                    {
                        "line": line,
                        "email": email,
                        "reason": reason,
                        "scope": scope,
                        "created_at": created_at,
                        "error": None,
                        "source_detail": detail,
                    },
                )
                yield good
            return
        except csv.Error as exc:
            # e.g. a field over csv.field_size_limit(): that record is lost, the rest is not.
            line = last + 1
            last = reader.line_num
            yield ImportRow(line, "", None, None, None, f"unreadable CSV: {exc}", "")


def _short_or_empty(line: int, row: list[str], email_at: int, width: int) -> ImportRow | None:
    """The bad row for a record that is too short or has no address; None for a blank one."""
    if not any(cell.strip() for cell in row):
        return None  # blank line, or a spreadsheet's row of empty cells
    email = row[email_at].strip() if len(row) > email_at else ""
    if len(row) < width:
        error = f"too few columns: expected {width}, found {len(row)}"
    else:
        error = "no email address"
    return ImportRow(line, email, None, None, None, error, "")


# Forms tried after ISO 8601, for what providers write besides it: RFC 2822 (Mailgun's
# created_at, "Fri, 21 Oct 2011 11:02:55 GMT") with or without the weekday.
_OTHER_TIME_FORMATS = (
    "%a, %d %b %Y %H:%M:%S %z",
    "%d %b %Y %H:%M:%S %z",
    "%a, %d %b %Y %H:%M:%S",
    "%d %b %Y %H:%M:%S",
)
_UTC_SUFFIXES = (" GMT", " UTC", " UT")


def parse_time(raw: str) -> datetime | None:
    """A provider timestamp as an aware UTC datetime; None for an empty cell.

    Accepts ISO 8601 (with or without zone or `Z`; no zone means UTC), `YYYY-MM-DD HH:MM:SS`
    (UTC, which is also Mailchimp's form), Unix epoch seconds, and RFC 2822. Anything else
    raises ValueError ("unparseable date '...'"), which the reader turns into a bad row."""
    if not raw:
        return None
    try:
        if raw.isdigit():
            value = datetime.fromtimestamp(int(raw), UTC)
        else:
            value = datetime.fromisoformat(raw)  # the usual case goes first, as it comes
    except (ValueError, OverflowError, OSError):
        value = _parse_other_time(raw)
        if value is None:
            return None
    return value if value.tzinfo is UTC else _as_utc(value)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        # combine() rather than replace(tzinfo=...): the same value at a fraction of the cost,
        # which shows at a million rows.
        return datetime.combine(value.date(), value.time(), UTC)
    return value.astimezone(UTC)


def _parse_other_time(raw: str) -> datetime | None:
    text = raw.strip()
    if not text:
        return None
    if text != raw:
        return parse_time(text)
    if text.endswith(_UTC_SUFFIXES):
        bare = text.rsplit(" ", 1)[0]
        try:
            value = datetime.fromisoformat(bare)
            if value.tzinfo is None:
                return value
        except ValueError:
            text = f"{bare} +0000"
    if text.replace(".", "", 1).isdigit():
        try:
            return datetime.fromtimestamp(float(text), UTC)
        except (ValueError, OverflowError, OSError):
            pass
    for pattern in _OTHER_TIME_FORMATS:
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    raise _BadValue(f"unparseable date '{text}'")
