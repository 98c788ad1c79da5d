"""Importing suppression lists from CSV: queue an upload, then run it in chunks.

The writes of `ImportJob` and of entries that arrive by import: file formats are read by
`suppression.import_formats` (pure), the bulk insert is `suppression.sql` (one COPY per chunk).
Each chunk is one transaction with the job's counters, so an interrupted import keeps whole chunks
and its next run (a redelivered task, a retry) resumes after the rows counted done: no row is
counted twice. Rows already listed are left alone, which also makes re-importing a file change
nothing. One process runs a job at a time.
"""

from __future__ import annotations

import datetime
import gzip
import io
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from compliance import audit, deadlines, locks
from compliance.errors import ServiceError
from compliance.models import Tenant
from compliance.read_ahead import read_ahead
from suppression import addresses, import_formats, rules, sql
from suppression.models import ImportJob, Origin, Suppression
from suppression.scopes import Target, parse_scope
from suppression.services import entries as entry_services

CHUNK_ROWS = 20_000
# pg_advisory_lock's first key: this lock class, so it never meets another feature's locks.
_LOCK_CLASS = 0x696D70  # "imp"
ERRORS_KEPT = 1000


def _text(content: bytes) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(content), encoding="utf-8-sig", newline="")


def queue_import(
    *, content: bytes, filename: str = "", format_name: str | None = None, tenant: Tenant | None
) -> ImportJob:
    """Store the file and run its import as a task (in-process without a broker).

    Raises ServiceError for a file that is empty, not UTF-8, too large or of an unknown format.
    """
    job = create_job(content=content, filename=filename, format_name=format_name, tenant=tenant)
    from suppression.tasks import run_import_job

    transaction.on_commit(lambda: run_import_job.delay(job.pk))
    return job


def create_job(
    *, content: bytes, filename: str = "", format_name: str | None = None, tenant: Tenant | None
) -> ImportJob:
    """Check the file's header and store it as a queued import. Raises ServiceError."""
    if len(content) > settings.IMPORT_MAX_BYTES:
        raise ServiceError(
            f"the file is larger than {settings.IMPORT_MAX_BYTES} bytes",
            code="too_large",
            status=413,
        )
    if "\x00" in filename:  # PostgreSQL text cannot hold NUL; the name is stored as given
        raise ServiceError("the file name cannot contain NUL characters", code="invalid")
    head = content[:65536]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A character cut at the sample's edge is no error; a file within the sample has no edge.
        if len(content) <= len(head) or exc.start < len(head) - 4:
            raise ServiceError("the file is not UTF-8 text", code="not_utf8") from exc
    first_line = _text(content).readline()
    if not first_line.strip():
        raise ServiceError("the file is empty or starts with a blank line", code="empty")
    try:
        fmt, _ = import_formats.read_rows([first_line], format_name=format_name or None)
    except import_formats.UnknownFormat as exc:
        raise ServiceError(str(exc), code="unknown_format") from exc
    data_lines = sum(1 for line in content.splitlines()[1:] if line.strip())
    job = ImportJob.objects.create(
        tenant=tenant,
        format_name=fmt.name,
        filename=filename[:255],
        content=gzip.compress(content, compresslevel=1),
        rows_total=data_lines,
        created_by_label=audit.current_actor().label,
    )
    return job


def _lifetime(reason: str) -> datetime.timedelta | None:
    """How long an imported entry blocks, counted from its date: a soft bounce as long as one
    from reports (fbl.services), so an old one in a provider's export does not block forever;
    every other reason until lifted."""
    if reason == rules.SOFT_BOUNCE:
        return datetime.timedelta(days=settings.SOFT_BOUNCE_SUPPRESS_DAYS)
    return None


class _Resolved(NamedTuple):
    """A target with the column values of its entries, worked out once per file."""

    target: Target
    key: str
    label: str
    tenant_id: int | None
    scope: str
    stream_id: int | None
    topic_id: int | None


class _Targets:
    """Resolves each distinct (scope, reason) of a file once: a target, or why there is none."""

    def __init__(self, tenant: Tenant | None):
        self.tenant = tenant
        self.known: dict[tuple[str | None, str], _Resolved | str] = {}

    def get(self, scope: str | None, reason: str) -> _Resolved | str:
        key = (scope, reason)
        found = self.known.get(key)
        if found is None:
            try:
                t = parse_scope(self.tenant, scope, reason=reason)
            except ServiceError as exc:
                found = exc.message
            else:
                found = _Resolved(
                    t,
                    t.key,
                    t.label,
                    t.tenant.pk if t.tenant else None,
                    t.scope,
                    t.stream.pk if t.stream else None,
                    t.topic.pk if t.topic else None,
                )
            self.known[key] = found
        return found


class _Hashed(NamedTuple):
    """A data row with its normalised address and hash, or the reason it is bad."""

    row: import_formats.ImportRow
    address: str = ""
    address_hash: bytes = b""
    error: str | None = None


def _hashed_chunks(rows: Iterable[import_formats.ImportRow], key: bytes) -> Iterator[list[_Hashed]]:
    """The file's rows, CHUNK_ROWS at a time, normalised and hashed. Pure Python: no database,
    so it can run beside the database's work on the previous chunk."""
    digest = addresses.hasher(key)
    while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
        hashed = []
        for row in chunk:
            if row.error:
                hashed.append(_Hashed(row, error=row.error))
                continue
            try:
                normalised = addresses.normalise(row.email)
            except addresses.InvalidAddress as exc:
                hashed.append(_Hashed(row, error=f"invalid address: {exc.reason}"))
                continue
            hashed.append(_Hashed(row, normalised, digest(normalised.encode())))
        yield hashed


class _CopyChunk(NamedTuple):
    """One chunk of a file as COPY data, made without the database.

    `pairs` numbers each (scope, reason) of the chunk's good rows (the number is in the COPY
    data); `members` lists (line, email) per number, in case staff's scope turns out unknown."""

    rows: int
    data: str
    bad: list[dict]
    pairs: dict[int, tuple[str | None, str]]
    members: dict[int, list[tuple[int, str]]]
    # The earliest and latest dates the rows give (None: no row gives one), so the chunk's
    # opt-out deadlines are worked out once per day rather than once per row.
    earliest: datetime.datetime | None = None
    latest: datetime.datetime | None = None


def _copy_chunks(rows: Iterable[import_formats.ImportRow], key: bytes) -> Iterator[_CopyChunk]:
    """The file's rows, CHUNK_ROWS at a time, normalised, hashed and written as COPY data."""
    numbers: dict[tuple[str | None, str], int] = {}
    for chunk in _hashed_chunks(rows, key):
        lines, bad = [], []
        pairs: dict[int, tuple[str | None, str]] = {}
        members: dict[int, list[tuple[int, str]]] = {}
        dates = []
        for item in chunk:
            row = item.row
            if item.error is not None:
                bad.append({"line": row.line, "email": row.email, "error": item.error})
                continue
            pair = (row.scope, row.reason)
            number = numbers.setdefault(pair, len(numbers))
            if number not in pairs:
                pairs[number] = pair
                members[number] = []
            members[number].append((row.line, row.email))
            created = None
            if row.created_at:
                dates.append(row.created_at)
                created = row.created_at.isoformat()
            lines.append(
                sql.import_copy_line(row.line, item.address_hash, item.address, number, created)
            )
        yield _CopyChunk(
            len(chunk),
            "".join(lines),
            bad,
            pairs,
            members,
            min(dates) if dates else None,
            max(dates) if dates else None,
        )


class _Entry(NamedTuple):
    line: int
    address_hash: bytes
    address: str
    scope_key: str
    reason: str
    created_at: datetime.datetime
    expires_at: datetime.datetime | None


def _prepare(
    hashed: list[_Hashed], targets: _Targets, now, bad: list[dict]
) -> list[tuple[_Entry, Target]]:
    """Good rows as entries (with their resolved target); bad ones appended to `bad`."""
    entries = []
    for item in hashed:
        row = item.row
        found = item.error or targets.get(row.scope, row.reason)
        if isinstance(found, str):
            bad.append({"line": row.line, "email": row.email, "error": found})
            continue
        created_at = row.created_at or now
        lifetime = _lifetime(row.reason)
        entry = _Entry(
            row.line,
            item.address_hash,
            item.address,
            found.key,
            row.reason,
            created_at,
            None if lifetime is None else created_at + lifetime,
        )
        entries.append((entry, found.target))
    return entries


def _insert_one_by_one(prepared, job) -> int:
    """The embedded default's path (SQLite): the same rules through the service."""
    added = 0
    for e, target in prepared:
        if Suppression.objects.filter(address_hash=e.address_hash, scope_key=e.scope_key).exists():
            continue
        entry_services.suppress(
            target=target,
            address=e.address,
            reason=e.reason,
            origin=Origin.IMPORT,
            evidence=job,
            evidence_note=f"import #{job.pk} line {e.line}",
            created_at=e.created_at,
            expires_at=e.expires_at,
        )
        added += 1
    return added


def run_import(
    job: ImportJob, *, on_progress: Callable[[ImportJob], None] | None = None
) -> ImportJob:
    """Import the job's file chunk by chunk, keeping its counters and first errors current; a job
    run before resumes after its rows done. Does nothing to a job that is done or that another
    process is running now (the job is returned as it stands)."""
    with locks.exclusive(_LOCK_CLASS, job.pk) as mine:
        job.refresh_from_db()
        if not mine or job.status == ImportJob.Status.DONE:
            return job
        return _run(job, on_progress)


def _run(job: ImportJob, on_progress: Callable[[ImportJob], None] | None) -> ImportJob:
    now = timezone.now()
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.RUNNING, started_at=Coalesce(F("started_at"), now), message=""
    )
    targets = _Targets(job.tenant)
    evidence_type = ContentType.objects.get_for_model(ImportJob)
    text = io.TextIOWrapper(
        gzip.GzipFile(fileobj=io.BytesIO(bytes(job.content))), encoding="utf-8-sig", newline=""
    )
    actor = audit.Actor(label=job.created_by_label or "import", via="import")
    try:
        _, rows = import_formats.read_rows(text, format_name=job.format_name)
        # Rows an earlier run committed (whole chunks, counted in the same transactions).
        rows = itertools.islice(rows, job.rows_done, None)
        key = settings.ADDRESS_HASH_KEY.encode()
        if connection.vendor == "postgresql":
            chunks = read_ahead(_copy_chunks(rows, key), name="import-read-ahead")
            run_chunk = _copy_chunk
        else:
            run_chunk, chunks = _row_by_row_chunk, _hashed_chunks(rows, key)
        with audit.acting_as(actor):
            for chunk in chunks:
                run_chunk(job, chunk, targets, evidence_type, actor)
                job.refresh_from_db(fields=_PROGRESS_FIELDS)
                if on_progress:
                    on_progress(job)
    except Exception as exc:
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.FAILED,
            finished_at=timezone.now(),
            message=_without_nul(f"{type(exc).__name__}: {exc}")[:2000],
        )
        raise
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.DONE, finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job


_PROGRESS_FIELDS = ["rows_done", "rows_added", "rows_existing", "rows_bad", "errors", "status"]


def _without_nul(text: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL (0x00): a bad row's text shows U+FFFD there.
    return text.replace("\x00", "\ufffd")


def _record_progress(job, *, rows: int, added: int, good: int, bad: list[dict]) -> None:
    room = max(0, ERRORS_KEPT - len(job.errors))
    kept = [
        {k: _without_nul(v) if isinstance(v, str) else v for k, v in error.items()}
        for error in bad[:room]
    ]
    ImportJob.objects.filter(pk=job.pk).update(
        rows_done=F("rows_done") + rows,
        rows_added=F("rows_added") + added,
        rows_existing=F("rows_existing") + (good - added),
        rows_bad=F("rows_bad") + len(bad),
        errors=job.errors + kept,
    )


def _copy_chunk(job, chunk: _CopyChunk, targets, evidence_type, actor) -> None:
    """PostgreSQL: the chunk's COPY data in, and one statement for entries, history and opt-out
    requests."""
    bad = list(chunk.bad)
    good_targets = []
    policies: dict[int | None, deadlines.OptOutPolicy] = {}
    for number, (scope, reason) in chunk.pairs.items():
        found = targets.get(scope, reason)
        if isinstance(found, str):
            bad.extend(
                {"line": line, "email": email, "error": found}
                for line, email in chunk.members[number]
            )
            continue
        policy = deadlines.policy_of(found.target.tenant)
        good_targets.append(
            sql.ImportTarget(
                id=number,
                scope_key=found.key,
                scope_label=found.label,
                tenant_id=found.tenant_id,
                scope=found.scope,
                stream_id=found.stream_id,
                topic_id=found.topic_id,
                reason=reason,
                expires_after=_lifetime(reason),
                time_zone=policy.time_zone,
                target_hours=policy.target_hours,
            )
        )
        policies[found.tenant_id] = policy
    bad.sort(key=lambda item: item["line"])
    now = timezone.now()
    with transaction.atomic():
        added = sql.insert_copied_rows(
            chunk.data,
            good_targets,
            due_days=_due_days(policies, chunk.earliest or now, chunk.latest or now, now),
            now=now,
            evidence_type_id=evidence_type.pk,
            evidence_id=str(job.pk),
            note_prefix=f"import #{job.pk} line ",
            actor=actor,
        )
        _record_progress(job, rows=chunk.rows, added=added, good=chunk.rows - len(bad), bad=bad)


def _due_days(policies, earliest, latest, now) -> list[sql.DueDay]:
    """The CAN-SPAM due time of every day an opt-out of the chunk may have been received on,
    per tenant: the rows' dates (a day either side, for time zones) and today."""
    due = []
    for tenant_id, policy in policies.items():
        first = deadlines.local_date(min(earliest, now), policy) - datetime.timedelta(days=1)
        last = deadlines.local_date(max(latest, now), policy) + datetime.timedelta(days=1)
        day = first
        while day <= last:
            at = deadlines.opt_out_due_on(day, policy)
            due.append(sql.DueDay(tenant_id, day, at))
            day += datetime.timedelta(days=1)
    return due


def _row_by_row_chunk(job, chunk: list[_Hashed], targets, evidence_type, actor) -> None:
    """SQLite (the embedded default): the same rules, one entry at a time through the service."""
    bad: list[dict] = []
    prepared = _prepare(chunk, targets, timezone.now(), bad)
    with transaction.atomic():
        added = _insert_one_by_one(prepared, job)
        _record_progress(job, rows=len(chunk), added=added, good=len(prepared), bad=bad)
