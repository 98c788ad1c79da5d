"""Importing consent records kept elsewhere (an older system, a CRM export) from CSV.

Every row goes through the API's own checks (`services._prepare_one`); a bad row is reported by
its line number and reason and nothing of it is written, while good rows go in. Each row has an
import key, so importing the same file again changes nothing:

    import_key = sha256("TENANT_ID|ADDRESS_HASH|PURPOSE|ACTION|BASIS|METHOD|COLLECTED_AT")

in hex (the fields joined by U+001F, not "|"; TENANT_ID is the tenant's id, ADDRESS_HASH the
address's keyed hash in hex; PURPOSE is `stream` or `stream/topic` by slug, ACTION is
`granted` or `withdrawn`, COLLECTED_AT is ISO 8601 in UTC). A row's `collected_at` is therefore
required even where the method would not need it: without it the row has no stable identity.

On PostgreSQL each chunk is COPied into a temporary table and written by one statement
(`consent.sql.IMPORT_INSERT`): the records, then each purpose's state, moved forward only by a
newer record. SQLite, the embedded default, writes row by row through `services.record_prepared`.
Each chunk is one transaction, so an interrupted import keeps whole chunks and can be run again.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import BinaryIO, NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from compliance import audit
from compliance.consent import rules, services, sql
from compliance.consent.models import ConsentRecord
from compliance.errors import ServiceError
from compliance.models import Tenant
from compliance.read_ahead import read_ahead

__all__ = ["COLUMNS", "ImportOutcome", "import_consents", "import_key"]

RECORD_COLUMNS = ("address", "purpose", "action", "basis", "method", "jurisdiction")
EVIDENCE_COLUMNS = (*rules.EVIDENCE_FIELDS, "wording_id")
COLUMNS = RECORD_COLUMNS + EVIDENCE_COLUMNS
CHUNK_ROWS = 20_000
ERRORS_KEPT = 1000


@dataclass
class ImportOutcome:
    """What an import did. `errors` holds the first ERRORS_KEPT bad rows as
    {"line", "address", "error"}; `bad` counts them all."""

    rows: int = 0
    added: int = 0
    existing: int = 0
    bad: int = 0
    errors: list[dict] = field(default_factory=list)

    def refuse(self, line: int, address: str, error: str) -> None:
        self.bad += 1
        if len(self.errors) < ERRORS_KEPT:
            self.errors.append({"line": line, "address": address, "error": error})


@dataclass(frozen=True)
class _Row:
    line: int
    item: dict | None  # None: the CSV reader could not read this row
    error: str = ""


def import_key(prepared: services.Prepared) -> str:
    """The row's identity in the ledger (see the module's docstring)."""
    parts = (
        str(prepared.tenant.pk),
        prepared.address_hash.hex(),
        prepared.purpose,
        prepared.action,
        prepared.basis,
        prepared.method,
        prepared.occurred_at.astimezone(datetime.UTC).isoformat(),
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _open(source: BinaryIO) -> tuple[list[str], csv.DictReader]:
    """The header's column names (lower case) and a reader of the rest. Raises ServiceError for
    a file that is not UTF-8 text, is empty or has no address column."""
    text = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader, None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ServiceError(f"the file cannot be read as UTF-8 CSV: {exc}", code="invalid") from exc
    if not header or not any(h.strip() for h in header):
        raise ServiceError("the file is empty or starts with a blank line", code="empty")
    names = [h.strip().lower() for h in header]
    if "address" not in names:
        raise ServiceError(
            f"the header has no address column (columns: {', '.join(COLUMNS)})",
            code="no_address_column",
        )
    return names, reader


def _rows(names: list[str], reader) -> Iterator[_Row]:
    """Each data row as the API's record shape, with the line it starts on (the header is 1)."""
    while True:
        line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield _Row(line, None, f"unreadable CSV: {exc}")
            continue
        if not values or not any(v.strip() for v in values):
            continue
        row = dict(zip(names, values, strict=False))
        item = {name: row.get(name, "").strip() for name in RECORD_COLUMNS}
        item["evidence"] = {
            name: row[name] for name in EVIDENCE_COLUMNS if row.get(name, "").strip()
        }
        yield _Row(line, item)


class _Checker:
    """The API's checks for each row, with the lookups of one file memoised."""

    def __init__(self, tenant: Tenant):
        self.tenant = tenant
        self.now = timezone.now()
        self.texts: dict = {}  # _prepare_one's: wording -> ConsentText named by id
        self.known: dict = {}
        self.text_ids: dict[str, int] = {}

    def check(self, item: dict) -> services.Prepared:
        """Raises rules.ConsentInputError."""
        if not item["evidence"].get("collected_at"):
            # The row's identity includes its time (module docstring): "now" would make a
            # re-import record it again.
            raise rules.ConsentInputError(
                "collected_at is required in an import", field="collected_at"
            )
        return services._prepare_one(
            self.tenant, item, now=self.now, texts=self.texts, known=self.known
        )

    def text_id(self, wording: str) -> int | None:
        """The id of the stored text of `wording`, stored once by text_for."""
        if not wording:
            return None
        found = self.text_ids.get(wording)
        if found is None:
            found = self.text_ids[wording] = services.text_for(self.tenant, wording).pk
        return found


def import_consents(
    *,
    source: BinaryIO,
    tenant: Tenant,
    on_progress: Callable[[ImportOutcome], None] | None = None,
) -> ImportOutcome:
    """Import a CSV of consent records (columns: COLUMNS, `address` required, the rest may be
    missing). Raises ServiceError for a file that cannot be read or has no address column; bad
    rows are not errors but listed in the outcome."""
    names, reader = _open(source)
    rows = _rows(names, reader)
    checker = _Checker(tenant)
    outcome = ImportOutcome()
    try:
        if connection.vendor == "postgresql":
            chunks = _copy_chunks(rows, checker)
            if not connection.in_atomic_block:
                # Inside a caller's transaction the checks must see its uncommitted rows, so
                # only a free-standing import reads ahead on its own connection.
                chunks = read_ahead(chunks, name="consent-import-read-ahead")
            for chunk in chunks:
                _write_copied(chunk, checker, outcome)
                if on_progress:
                    on_progress(outcome)
        else:
            while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
                _row_by_row_chunk(chunk, checker, outcome)
                if on_progress:
                    on_progress(outcome)
    except UnicodeDecodeError as exc:
        raise ServiceError(f"the file is not UTF-8 text: {exc}", code="invalid") from exc
    return outcome


def _checked(chunk: list[_Row], checker: _Checker, bad: list[tuple[int, str, str]]):
    """(line, Prepared) for the chunk's good rows; bad ones are appended to `bad`."""
    for row in chunk:
        if row.item is None:
            bad.append((row.line, "", row.error))
            continue
        try:
            yield row.line, checker.check(row.item)
        except rules.ConsentInputError as exc:
            bad.append((row.line, row.item.get("address", ""), str(exc)))


class _CopyChunk(NamedTuple):
    """A chunk of the file as COPY data (`good` rows of `rows`), and its bad rows."""

    rows: int
    good: int
    data: str
    bad: list[tuple[int, str, str]]


def _copy_chunks(rows: Iterator[_Row], checker: _Checker) -> Iterator[_CopyChunk]:
    """PostgreSQL: the file, CHUNK_ROWS at a time, checked and written as COPY data."""
    while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
        bad: list[tuple[int, str, str]] = []
        lines = []
        for line, p in _checked(chunk, checker, bad):
            ev = p.evidence
            lines.append(
                sql.copy_line(
                    (
                        line,
                        import_key(p),
                        p.address,
                        p.address_hash,
                        p.stream.pk,
                        p.topic.pk if p.topic else None,
                        p.action,
                        p.basis,
                        p.method,
                        p.jurisdiction,
                        p.occurred_at.isoformat(),
                        ev.get("ip") or None,
                        str(ev.get("user_agent") or "")[:500],
                        str(ev.get("page_url") or "")[:2000],
                        str(ev.get("form_id") or "")[:200],
                        p.text_id or checker.text_id(str(ev.get("wording") or "")),
                        str(ev.get("privacy_notice_version") or "")[:100],
                    )
                )
            )
        yield _CopyChunk(len(chunk), len(lines), "".join(lines), bad)


def _write_copied(chunk: _CopyChunk, checker: _Checker, outcome: ImportOutcome) -> None:
    """PostgreSQL: one chunk's COPY data in, one statement, one transaction."""
    added = 0
    if chunk.good:
        with transaction.atomic():
            added, _ = sql.insert_copied_records(
                chunk.data,
                tenant_id=checker.tenant.pk,
                now=timezone.now(),
                actor=audit.current_actor(),
            )
    for line, address, error in chunk.bad:
        outcome.refuse(line, address, error)
    outcome.rows += chunk.rows
    outcome.added += added
    outcome.existing += chunk.good - added


def _row_by_row_chunk(chunk: list[_Row], checker: _Checker, outcome: ImportOutcome) -> None:
    """SQLite (the embedded default): each new row through the service."""
    bad: list[tuple[int, str, str]] = []
    with transaction.atomic():
        for _, prepared in _checked(chunk, checker, bad):
            key = import_key(prepared)
            if ConsentRecord.objects.filter(import_key=key).exists():
                outcome.existing += 1
                continue
            services.record_prepared([replace(prepared, import_key=key)])
            outcome.added += 1
    for line, address, error in bad:
        outcome.refuse(line, address, error)
    outcome.rows += len(chunk)
