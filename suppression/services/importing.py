"""Importing suppression lists from CSV: queue an upload, then run it in chunks.

The writes of `ImportJob` and of entries that arrive by import: file formats are read by
`suppression.import_formats` (pure), the bulk insert is `suppression.sql` (one COPY per chunk).
Each chunk is one transaction with the job's counters, so an interrupted import keeps whole chunks
and its next run (a redelivered task, a retry) resumes after the rows counted done: no row is
counted twice. Rows already listed are left alone, which also makes re-importing a file change
nothing. One process runs a job at a time.

On PostgreSQL a file of several chunks is written on two connections at once (two lanes,
`compliance.db_lane`): while one chunk's statement runs, the next one's does too, so both cores
work for the database. Chunks still commit in the file's order, each after the one before it,
so the counters always describe a prefix of the file and a resumed run starts where they say.
A chunk that shares an address with the chunk before it waits for that one to commit before
inserting, as one writer would; a lane that waits for another writer's row lock longer than
LANE_LOCK_TIMEOUT gives way, and the rest of the file is written on one connection.
"""

from __future__ import annotations

import datetime
import gzip
import io
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from functools import partial
from typing import NamedTuple

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from compliance import audit, deadlines, locks
from compliance.db_lane import Lane
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
# How long a lane waits for a row lock another writer holds before the import falls back to one
# connection. A lane waiting for the chunk before it holds its own rows meanwhile, so a writer
# waiting for those while holding one the earlier chunk needs would otherwise wait forever,
# unseen by PostgreSQL's deadlock detector.
LANE_LOCK_TIMEOUT = "10s"


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
    # The good rows' address hashes: does the chunk share an address with the one before it?
    keys: frozenset[bytes] = frozenset()


def _copy_chunks(rows: Iterable[import_formats.ImportRow], key: bytes) -> Iterator[_CopyChunk]:
    """The file's rows, CHUNK_ROWS at a time, normalised, hashed and written as COPY data."""
    numbers: dict[tuple[str | None, str], int] = {}
    for chunk in _hashed_chunks(rows, key):
        lines, bad = [], []
        pairs: dict[int, tuple[str | None, str]] = {}
        members: dict[int, list[tuple[int, str]]] = {}
        dates, keys = [], []
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
            keys.append(item.address_hash)
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
            frozenset(keys),
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
    actor = audit.Actor(label=job.created_by_label or "import", via="import")
    run = _ChunkRun(_Targets(job.tenant), ContentType.objects.get_for_model(ImportJob), actor)
    try:
        with audit.acting_as(actor):
            if connection.vendor != "postgresql":
                for chunk in _hashed_chunks(_rows_not_done(job), _hash_key()):
                    _row_by_row_chunk(job, chunk, *run)
                    _progressed(job, on_progress)
            elif _in_two_lanes(job):
                try:
                    _copy_in_two_lanes(job, run, on_progress)
                except DatabaseError as exc:
                    if not _waited_too_long(exc):
                        raise
                    _copy_in_one_lane(job, run, on_progress)  # after the chunks committed
            else:
                _copy_in_one_lane(job, run, on_progress)
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


class _ChunkRun(NamedTuple):
    """What every chunk of one run is written with."""

    targets: _Targets
    evidence_type: ContentType
    actor: audit.Actor


def _hash_key() -> bytes:
    return settings.ADDRESS_HASH_KEY.encode()


def _rows_not_done(job: ImportJob) -> Iterator[import_formats.ImportRow]:
    """The file's rows after those counted done (whole chunks committed by earlier runs)."""
    job.refresh_from_db(fields=_PROGRESS_FIELDS)
    text = io.TextIOWrapper(
        gzip.GzipFile(fileobj=io.BytesIO(bytes(job.content))), encoding="utf-8-sig", newline=""
    )
    _, rows = import_formats.read_rows(text, format_name=job.format_name)
    return itertools.islice(rows, job.rows_done, None)


def _progressed(job: ImportJob, on_progress: Callable[[ImportJob], None] | None) -> None:
    job.refresh_from_db(fields=_PROGRESS_FIELDS)
    if on_progress:
        on_progress(job)


def _copy_in_one_lane(job, run: _ChunkRun, on_progress) -> None:
    chunks = _copy_chunks(_rows_not_done(job), _hash_key())
    for chunk in read_ahead(chunks, name="import-read-ahead"):
        _copy_chunk(job, chunk, *run)
        _progressed(job, on_progress)


def _in_two_lanes(job: ImportJob) -> bool:
    """Two lanes pay for a file of more than one chunk, run outside a transaction (the lanes'
    connections could not see one that is still open)."""
    return not connection.in_atomic_block and job.rows_total - job.rows_done > CHUNK_ROWS


def _copy_in_two_lanes(job, run: _ChunkRun, on_progress) -> None:
    """Chunk n on lane n % 2, at most two in flight: the next chunk's statement starts while the
    one before it is still running, and each commits after the one before it. After a chunk that
    added under a quarter of its rows (a file mostly listed already), the next one starts only
    once the chunk in flight is done, until a chunk adds many again."""

    def bounded_lock_waits():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, false)", [LANE_LOCK_TIMEOUT])

    lanes = [Lane(name=f"import-lane-{n}", setup=bounded_lock_waits) for n in range(2)]
    in_flight: deque[tuple[Future, int]] = deque()
    try:
        before: Future | None = None
        before_keys: frozenset[bytes] = frozenset()
        writes_much = True  # did the last chunk done add many rows?
        chunks = _copy_chunks(_rows_not_done(job), _hash_key())
        for number, chunk in enumerate(read_ahead(chunks, name="import-read-ahead")):
            # A chunk of rows already listed is little work for the database and the reader's
            # Python sets the pace: a second session beside it would only take the reader's core.
            while in_flight and (len(in_flight) == 2 or not writes_much):
                writes_much = _finished(in_flight.popleft(), job, on_progress)
            shares = before is not None and not chunk.keys.isdisjoint(before_keys)
            before = lanes[number % 2].submit(
                partial(_lane_chunk, job, chunk, run, before, waits_first=shares)
            )
            in_flight.append((before, chunk.rows))
            before_keys = chunk.keys
        while in_flight:
            _finished(in_flight.popleft(), job, on_progress)
    finally:
        for lane in lanes:  # a chunk still in flight ends first (rolled back if one before failed)
            lane.close()


def _finished(flight: tuple[Future, int], job, on_progress) -> bool:
    """Wait for a chunk in flight (raising its error: the earliest failure is the one raised);
    whether it added at least a quarter of its rows."""
    future, rows = flight
    added = future.result()
    _progressed(job, on_progress)
    return added * 4 >= rows


class _EarlierChunkFailed(Exception):
    """The chunk before this one did not commit, so this one must not either."""


def _lane_chunk(job, chunk: _CopyChunk, run: _ChunkRun, before, *, waits_first: bool) -> int:
    with audit.acting_as(run.actor):
        if waits_first:
            _wait_for(before)
        return _copy_chunk(job, chunk, *run, before)


def _wait_for(before: Future | None) -> None:
    if before is None:
        return
    try:
        before.result()
    except BaseException as exc:
        raise _EarlierChunkFailed from exc


def _waited_too_long(exc: DatabaseError) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) == "55P03"  # lock_not_available


_PROGRESS_FIELDS = ["rows_done", "rows_added", "rows_existing", "rows_bad", "errors", "status"]


def _without_nul(text: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL (0x00): a bad row's text shows U+FFFD there.
    return text.replace("\x00", "\ufffd")


def _record_progress(job, *, rows: int, added: int, good: int, bad: list[dict]) -> None:
    # The errors kept so far as committed: with two lanes, `job` may not have the last chunk's.
    errors = ImportJob.objects.values_list("errors", flat=True).get(pk=job.pk)
    room = max(0, ERRORS_KEPT - len(errors))
    kept = [
        {k: _without_nul(v) if isinstance(v, str) else v for k, v in error.items()}
        for error in bad[:room]
    ]
    ImportJob.objects.filter(pk=job.pk).update(
        rows_done=F("rows_done") + rows,
        rows_added=F("rows_added") + added,
        rows_existing=F("rows_existing") + (good - added),
        rows_bad=F("rows_bad") + len(bad),
        errors=errors + kept,
    )


def _copy_chunk(
    job, chunk: _CopyChunk, targets, evidence_type, actor, before: Future | None = None
) -> int:
    """PostgreSQL: the chunk's COPY data in, and one statement for entries, history and opt-out
    requests; committed with the job's counters once `before` (the chunk before it, on the
    other lane) has committed. Returns how many rows it added."""
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
        _wait_for(before)
        _record_progress(job, rows=chunk.rows, added=added, good=chunk.rows - len(bad), bad=bad)
    return added


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
