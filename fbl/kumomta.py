"""KumoMTA log records in, as relay events.

KumoMTA's log hook (`kumo.configure_log_hook`) turns every event of a message's life into one
JSON log record; our policy posts those records to `POST /api/v1/events/kumomta`. The record
shape is KumoMTA's own (https://docs.kumomta.com/reference/log_record/, `JsonLogRecord` in
kumo-log-types): `type`, `id` (spool id), `sender`, `recipient`, `queue`, `site`, `size`,
`response` {`code`, `enhanced_code` {`class`, `subject`, `detail`} or null, `content`,
`command`}, `peer_address` {`name`, `addr`}, `timestamp` and `created` (unix seconds; newer
releases add `event_time` and `created_time` in RFC 3339), `num_attempts`,
`bounce_classification`, `feedback_report` (the parsed ARF report of a Feedback record),
`meta` and `headers` (the meta keys and message headers the hook was configured to capture).

What each record type becomes:

| record type        | event     | report: category                                         |
| ------------------ | --------- | -------------------------------------------------------- |
| `Delivery`         | delivery  | none (counted as a delivery)                             |
| `Bounce`           | bounce    | DSN, failed: classified from the remote server's reply   |
| `OOB`              | bounce    | DSN, failed: classified like `Bounce` (1)                |
| `TransientFailure` | bounce    | DSN, delayed: classified, but never permanent (2)        |
| `Expiration`       | bounce    | DSN, failed: transient (3)                               |
| `Feedback`         | feedback  | ARF: `feedback_report`'s feedback type and recipient     |
| `AdminBounce`      | none      | our own operator failed queued mail (4)                  |
| anything else      | none      | `Reception`, `Rejection`, `Delay(ed)`, `AdminRebind`, ... |

Classified means `fbl.classification`: permanent (and `hard`) only for the dead-address class,
policy for spam and policy blocks, transient for conditions that may clear.
(1) KumoMTA writes one OOB record per failed recipient of a DSN it received.
(2) A temporary failure is at worst transient; policy and unknown stay as classified.
(3) The message aged out of the queue after temporary failures: nobody refused the recipient.
(4) `551 5.7.1 Administrator bounced with reason: ...` says nothing about the recipient.

A reply KumoMTA wrote itself (content starting "KumoMTA internal:", e.g. a full ready queue or
a failed connection) carries no status from the remote server: only its words are classified,
so a relay-side condition never counts as the recipient's soft bounce, while "connection
refused" or a DNS failure at the recipient's domain still does.

The diagnostic kept on a recipient is the reply as one line, `code enhanced-code content`, as
KumoMTA's own DSNs write it. The SMTP command the reply answered (`response.command`) is passed
to the classifier as the phase: a refusal at MAIL FROM or at the greeting never judged the
recipient.

Context: tenant, stream and campaign from `meta` keys `tenant`, `stream`, `campaign`; the sender
is the record's envelope sender (for a Feedback record, the reported message's
`original_mail_from`: the record's own sender is the feedback loop); the time is `event_time`,
else `timestamp`. Captured `headers` of the original message (List-Unsubscribe, our trace
header, Message-ID) are kept on the report as its original headers.

The recipient of a Feedback record (whose own `recipient` is our feedback-loop mailbox) is
recovered in DESIGN.md order: our token or trace header in the reported message (through
`hooks`), the recipient KumoMTA decoded from its own trace header (`supplemental_trace`), the
VERP return path, `Original-Rcpt-To` (KumoMTA spells it `original_rcpto_to`), the reported
message's `To:`.

`source_id` is the record type, spool id and a digest of type, id, recipient, attempt number and
timestamp: the same record posted twice has the same id, while each retry of a message has its
own.

Malformed input raises `EventError` naming the record's index; nothing is returned for it. NUL
characters, which JSON allows and PostgreSQL cannot store, are replaced by U+FFFD.

No Django import here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from typing import Any, Final, NoReturn

from fbl.addresses import first_address, is_redacted
from fbl.arf import PROVIDER_RECIPIENT_FIELDS, feedback_type_of
from fbl.classification import bounced_recipient, choose_status, classify
from fbl.events import Context, EventError, EventKind, SourceEvent
from fbl.headers import header, header_all, header_block
from fbl.recipients import RecoveryHooks, ours, recover
from fbl.report import Category, ParsedReport, Recipient, without_nul

__all__ = ["IGNORED_TYPES", "SOURCE", "parse_records"]

SOURCE: Final = "kumomta"

_BOUNCE_TYPES: Final = frozenset({"Bounce", "OOB", "TransientFailure", "Expiration"})
_RELEVANT_TYPES: Final = _BOUNCE_TYPES | {"Delivery", "Feedback"}
# Valid record types that are not acted on (anything else unknown is ignored the same way).
IGNORED_TYPES: Final = frozenset(
    {
        "Reception",
        "Rejection",
        "AdminBounce",
        "Delay",
        "Delayed",
        "AdminRebind",
        "DeferredInjectionRebind",
        "Any",
    }
)
_INTERNAL_PREFIX: Final = "kumomta internal"
_CONTEXT_KEYS: Final = ("tenant", "stream", "campaign")
_DEFAULT_HOOKS: Final = RecoveryHooks()
_AT_WORST_TRANSIENT: Final[dict[Category, Category]] = {"permanent": "transient"}


def parse_records(
    data: Any, *, hooks: RecoveryHooks | None = None
) -> tuple[list[SourceEvent], list[str]]:
    """The events in a decoded JSON body (one log record, or a list of them), and notes on
    records that gave none or had something odd about them. Raises EventError for malformed
    input. `hooks` recognise our own token in a reported message (fbl.ours.hooks())."""
    if isinstance(data, Mapping):
        records: list[Any] = [data]
    elif isinstance(data, list):
        records = data
    else:
        raise EventError(
            "the body must be a KumoMTA log record (a JSON object) or an array of them, "
            f"not {_json_type(data)}"
        )
    hooks = hooks or _DEFAULT_HOOKS
    records = without_nul(records)
    events: list[SourceEvent] = []
    notes: list[str] = []
    for index, record in enumerate(records):
        event = _Record(index, record).event(hooks, notes)
        if event is not None:
            events.append(event)
    return events, notes


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Record:
    """Typed reads of one record; every error names the record and the field."""

    def __init__(self, index: int, record: Any):
        self.index = index
        if not isinstance(record, Mapping):
            self.fail(f"expected a log record (a JSON object), got {_json_type(record)}")
        self.record = record

    def fail(self, what: str) -> NoReturn:
        raise EventError(f"record {self.index}: {what}")

    # --- typed field access ------------------------------------------------------------

    def _get(self, obj: Mapping, name: str, path: str, kinds: tuple[type, ...], kind_name: str):
        value = obj.get(name)
        if value is None:
            return None
        if isinstance(value, bool) and bool not in kinds:
            self.fail(f"'{path}' must be {kind_name}, got {_json_type(value)}")
        if not isinstance(value, kinds):
            self.fail(f"'{path}' must be {kind_name}, got {_json_type(value)}")
        return value

    def string(self, obj: Mapping, name: str, path: str | None = None) -> str | None:
        return self._get(obj, name, path or name, (str,), "a string")

    def integer(self, obj: Mapping, name: str, path: str | None = None) -> int | None:
        return self._get(obj, name, path or name, (int,), "a whole number")

    def number(self, obj: Mapping, name: str, path: str | None = None) -> float | int | None:
        return self._get(obj, name, path or name, (int, float), "a number")

    def mapping(self, obj: Mapping, name: str, path: str | None = None) -> Mapping | None:
        return self._get(obj, name, path or name, (Mapping,), "an object")

    def strings(self, obj: Mapping, name: str, path: str | None = None) -> list[str]:
        path = path or name
        values = self._get(obj, name, path, (list,), "an array of strings") or []
        for position, value in enumerate(values):
            if not isinstance(value, str):
                self.fail(f"'{path}[{position}]' must be a string, got {_json_type(value)}")
        return values

    def required_string(self, name: str, why: str) -> str:
        value = self.string(self.record, name)
        if value is None or not value.strip():
            self.fail(f"'{name}' is missing ({why})")
        return value.strip()

    # --- the record --------------------------------------------------------------------

    def event(self, hooks: RecoveryHooks, notes: list[str]) -> SourceEvent | None:
        record = self.record
        if "type" not in record or record["type"] is None:
            self.fail("'type' is missing")
        rtype = self.string(record, "type")
        if rtype not in _RELEVANT_TYPES:
            notes.append(f"record {self.index}: {rtype} records are not acted on")
            return None

        record_id = self.required_string("id", "the message's spool id identifies the record")
        timestamp = self.number(record, "timestamp")
        if timestamp is None:
            self.fail("'timestamp' is missing (when the record was written, unix seconds)")
        occurred_at = self._occurred_at(timestamp)
        attempts = self.integer(record, "num_attempts")
        sender = (self.string(record, "sender") or "").strip().strip("<>") or None
        if rtype == "Feedback":
            recipient_field = (self.string(record, "recipient") or "").strip() or None
        else:
            recipient_field = self.required_string(
                "recipient", f"a {rtype} record is about one recipient"
            ).strip("<>")
        meta = self.mapping(record, "meta") or {}
        headers = self._headers()
        self.mapping(record, "peer_address")
        self.string(record, "bounce_classification")
        self.string(record, "queue")

        context_values = {key: self._meta_value(meta, key) for key in _CONTEXT_KEYS}
        kind: EventKind
        problems: list[str] = []
        if rtype == "Delivery":
            kind, report, recipient = "delivery", None, recipient_field
        elif rtype == "Feedback":
            kind = "feedback"
            report = self._feedback(hooks, problems)
            recipient = next((r.address for r in report.recipients if r.address), None)
            sender = _bare(report.original_mail_from) or _bare(
                header(_parse_headers(report.original_headers), "Return-Path")
            )
        else:
            kind = "bounce"
            report = self._bounce(rtype, recipient_field, sender, headers)
            recipient = recipient_field
        notes.extend(f"record {self.index}: {problem}" for problem in problems)

        source_id = _source_id(rtype, record_id, recipient_field, attempts, timestamp)
        return SourceEvent(
            source=SOURCE,
            kind=kind,
            source_id=source_id,
            recipient=recipient,
            context=Context(sender=sender, occurred_at=occurred_at, **context_values),
            report=report,
            record=dict(record),
        )

    def _occurred_at(self, timestamp: float | int) -> datetime:
        event_time = self.string(self.record, "event_time")
        if event_time is not None:
            try:
                moment = datetime.fromisoformat(event_time.strip())
            except ValueError:
                self.fail(f"'event_time' is not an RFC 3339 date: {event_time[:60]!r}")
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return self._moment("timestamp", timestamp)

    def _moment(self, name: str, seconds: float | int) -> datetime:
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            self.fail(f"'{name}' is out of range: {seconds!r}")

    def _meta_value(self, meta: Mapping, key: str) -> str | None:
        value = meta.get(key)
        if value is None:
            return None
        if _is_number(value):
            return str(value)
        if not isinstance(value, str):
            self.fail(f"'meta.{key}' must be a string, got {_json_type(value)}")
        return value.strip() or None

    def _headers(self) -> dict[str, list[str]]:
        headers = self.mapping(self.record, "headers") or {}
        out: dict[str, list[str]] = {}
        for name, value in headers.items():
            if value is None:
                continue
            if isinstance(value, str):
                out[str(name)] = [value]
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                out[str(name)] = list(value)
            else:
                self.fail(f"'headers.{name}' must be a string or an array of strings")
        return out

    # --- bounces -----------------------------------------------------------------------

    def _response(self) -> tuple[int | None, str | None, str, str | None]:
        """(code, enhanced status, content, command) of the record's response."""
        response = self.mapping(self.record, "response")
        if response is None:
            return None, None, "", None
        code = self.integer(response, "code", "response.code")
        enhanced = self.mapping(response, "enhanced_code", "response.enhanced_code")
        status = None
        if enhanced is not None:
            parts = []
            for name in ("class", "subject", "detail"):
                value = self.integer(enhanced, name, f"response.enhanced_code.{name}")
                if value is None:
                    self.fail(f"'response.enhanced_code.{name}' is missing")
                parts.append(str(value))
            status = ".".join(parts)
        content = self.string(response, "content", "response.content") or ""
        command = self.string(response, "command", "response.command")
        return code, status, content, command

    def _bounce(
        self, rtype: str, recipient: str, sender: str | None, headers: dict[str, list[str]]
    ) -> ParsedReport:
        code, enhanced, content, command = self._response()
        peer = self.mapping(self.record, "peer_address") or {}
        remote_host = self.string(peer, "name", "peer_address.name")
        remote_host = remote_host.rstrip(".") if remote_host else None
        diagnostic = " ".join(str(p) for p in (code, enhanced, content.strip()) if p) or None
        phase = _phase(command)
        category: Category | None = None
        if content.strip().lower().startswith(_INTERNAL_PREFIX):
            # KumoMTA's own words: no status from the remote server to go by.
            status = enhanced
            category = classify(enhanced, content, phase=phase)
        else:
            status = choose_status(enhanced, diagnostic)
        action = "delayed" if rtype == "TransientFailure" else "failed"
        if rtype == "Expiration":
            category = "transient"
        original_headers = _header_text(headers)
        enclosed = _parse_headers(original_headers)
        created = self.number(self.record, "created")
        arrival = self._moment("created", created) if created is not None else None
        return ParsedReport(
            kind="dsn",
            original_mail_from=sender,
            arrival_date=arrival,
            reporting_mta=remote_host if rtype == "OOB" else None,
            original_message_id=header(enclosed, "Message-ID") if enclosed else None,
            original_headers=original_headers,
            recipients=(
                bounced_recipient(
                    recipient,
                    status=status,
                    action=action,
                    diagnostic=diagnostic,
                    phase=phase,
                    remote_mta=remote_host,
                    category=category,
                    # A temporary failure is at worst transient (the table's note 2).
                    instead=_AT_WORST_TRANSIENT if rtype == "TransientFailure" else None,
                ),
            ),
        )

    # --- feedback ----------------------------------------------------------------------

    def _feedback(self, hooks: RecoveryHooks, problems: list[str]) -> ParsedReport:
        report = self.mapping(self.record, "feedback_report")
        if report is None:
            self.fail("'feedback_report' is missing (a Feedback record carries the ARF report)")

        def field(name: str) -> str | None:
            return self.string(report, name, f"feedback_report.{name}")

        feedback_type = feedback_type_of(field("feedback_type"), problems)
        if feedback_type is None:
            self.fail("'feedback_report.feedback_type' is missing")

        version = report.get("version")
        if version is not None and not (isinstance(version, str) or _is_number(version)):
            self.fail(f"'feedback_report.version' must be a string, got {_json_type(version)}")

        arrival_text = field("arrival_date")
        arrival = None
        if arrival_text:
            try:
                arrival = datetime.fromisoformat(arrival_text.strip())
            except ValueError:
                problems.append(f"unreadable feedback_report.arrival_date: {arrival_text[:60]}")

        reporting = report.get("reporting_mta")
        if isinstance(reporting, Mapping):
            reporting_mta = self.string(reporting, "name", "feedback_report.reporting_mta.name")
        elif reporting is None or isinstance(reporting, str):
            reporting_mta = reporting
        else:
            self.fail("'feedback_report.reporting_mta' must be an object")

        # KumoMTA's field is spelled original_rcpto_to; accept the RFC's spelling too.
        rcpt_to = self.strings(report, "original_rcpto_to", "feedback_report.original_rcpto_to")
        rcpt_to += self.strings(report, "original_rcpt_to", "feedback_report.original_rcpt_to")
        original_mail_from = field("original_mail_from")
        self.mapping(report, "extensions", "feedback_report.extensions")

        original_message = field("original_message")
        enclosed = _parse_headers(original_message)
        original_headers = header_block(enclosed) if enclosed is not None else None
        if enclosed is None:
            problems.append("the feedback report encloses no original message")

        trace = self.mapping(report, "supplemental_trace", "feedback_report.supplemental_trace")
        traced = None
        if trace is not None:
            traced = self.string(trace, "recipient", "feedback_report.supplemental_trace.recipient")
        recipients = _feedback_recipients(
            enclosed=enclosed,
            hooks=hooks,
            traced=traced,
            rcpt_to=rcpt_to,
            original_mail_from=original_mail_from,
        )
        if not recipients:
            problems.append("no recipient address found")
        elif all(r.redacted for r in recipients):
            problems.append("the recipient address is redacted")

        return ParsedReport(
            kind="arf",
            feedback_type=feedback_type,
            user_agent=field("user_agent"),
            version=str(version) if version is not None else None,
            original_mail_from=original_mail_from,
            original_rcpt_to=tuple(rcpt_to),
            arrival_date=arrival,
            reporting_mta=reporting_mta,
            source_ip=field("source_ip"),
            reported_domains=tuple(
                self.strings(report, "reported_domain", "feedback_report.reported_domain")
            ),
            reported_uris=tuple(
                self.strings(report, "reported_uri", "feedback_report.reported_uri")
            ),
            authentication_results=tuple(
                self.strings(
                    report, "authentication_results", "feedback_report.authentication_results"
                )
            ),
            incidents=self.integer(report, "incidents", "feedback_report.incidents"),
            original_message_id=header(enclosed, "Message-ID") if enclosed else None,
            original_headers=original_headers,
            original_envelope_id=field("original_envelope_id"),
            recipients=recipients,
            problems=tuple(problems),
        )


def _feedback_recipients(
    *,
    enclosed: Message | None,
    hooks: RecoveryHooks,
    traced: str | None,
    rcpt_to: list[str],
    original_mail_from: str | None,
) -> tuple[Recipient, ...]:
    if hooks.read_token is not None and enclosed is not None:
        mine = ours(enclosed, replace(hooks, verp_prefix=None))  # token, then trace header
        if mine is not None:
            return (Recipient(address=mine[0], found_by=mine[1]),)
    traced_address = first_address(traced)
    if traced_address and not is_redacted(traced_address):
        return (Recipient(address=traced_address, found_by="trace_header"),)
    provider = [v for name in PROVIDER_RECIPIENT_FIELDS for v in header_all(enclosed, name)]
    return recover(
        enclosed=enclosed,
        hooks=hooks,
        original_rcpt_to=rcpt_to,
        provider_rcpt=provider,
        return_paths=[original_mail_from],
    )


# --- helpers ---------------------------------------------------------------------------------


def _phase(command: str | None) -> str | None:
    """The SMTP command a reply answered ("RCPT TO:<a@b>\\r\\n", ".\\r\\n") as a classifier
    phase: RCPT, MAIL, DATA, or CONNECT for the greeting, TLS and authentication."""
    if not command:
        return None
    verb = command.strip().upper()
    if verb.startswith("RCPT"):
        return "RCPT"
    if verb.startswith("MAIL"):
        return "MAIL"
    if verb.startswith(("DATA", ".")):  # "." answers the end of the message data
        return "DATA"
    if verb.startswith(("EHLO", "HELO", "LHLO", "STARTTLS", "AUTH", "XCLIENT")):
        return "CONNECT"
    return None


def _bare(address: str | None) -> str | None:
    if not address:
        return None
    return first_address(address) or address.strip().strip("<>") or None


def _header_text(headers: dict[str, list[str]]) -> str | None:
    lines = [f"{name}: {value}" for name, values in headers.items() for value in values]
    return "\n".join(lines) if lines else None


def _parse_headers(text: str | None) -> Message | None:
    if not text or not text.strip():
        return None
    try:
        return HeaderParser(policy=compat32).parsestr(text.lstrip("\r\n"), headersonly=True)
    except Exception:  # a hostile header block costs the recovery rules, not the record
        return None


def _source_id(
    rtype: str, record_id: str, recipient: str | None, attempts: int | None, timestamp: float
) -> str:
    parts = [rtype, record_id, recipient or "", str(attempts or 0), repr(timestamp)]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{rtype}:{record_id[:100]}:{digest[:40]}"
