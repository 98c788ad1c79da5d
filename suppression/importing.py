"""Importing suppression lists from CSV: queue an upload, then run it in chunks.

The service module for `ImportJob` and for entries that arrive by import. Each chunk is one
transaction, so an interrupted import keeps whole chunks and can simply be run again: rows
already listed are left alone, which also makes re-importing a file change nothing.
"""

from __future__ import annotations

import gzip
import io
import itertools
from collections.abc import Callable, Iterable

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from compliance import audit
from compliance.errors import ServiceError
from compliance.models import Tenant
from suppression import addresses, import_formats, services, sql
from suppression.models import ImportJob, Origin, Suppression
from suppression.scopes import Target, parse_scope

CHUNK_ROWS = 20_000
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
    head = content[:65536]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the sample's edge
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


class _Targets:
    """Resolves each distinct (scope, reason) of a file once."""

    def __init__(self, tenant: Tenant | None):
        self.tenant = tenant
        self.known: dict[tuple[str | None, str], Target | str] = {}

    def get(self, scope: str | None, reason: str) -> Target | str:
        key = (scope, reason)
        if key not in self.known:
            try:
                self.known[key] = parse_scope(self.tenant, scope, reason=reason)
            except ServiceError as exc:
                self.known[key] = exc.message
        return self.known[key]


def _prepare(
    rows: Iterable[import_formats.ImportRow], targets: _Targets, now, bad: list[dict]
) -> list[tuple[sql.NewEntry, Target]]:
    """Good rows as table entries (with their resolved target); bad ones appended to `bad`."""
    key = settings.ADDRESS_HASH_KEY.encode()
    entries = []
    for row in rows:
        if row.error:
            bad.append({"line": row.line, "email": row.email, "error": row.error})
            continue
        try:
            normalised = addresses.normalise(row.email)
        except addresses.InvalidAddress as exc:
            bad.append(
                {"line": row.line, "email": row.email, "error": f"invalid address: {exc.reason}"}
            )
            continue
        target = targets.get(row.scope, row.reason)
        if isinstance(target, str):
            bad.append({"line": row.line, "email": row.email, "error": target})
            continue
        entries.append(
            (
                sql.NewEntry(
                    line=row.line,
                    address_hash=addresses.address_hash(normalised, key),
                    address=normalised,
                    scope_key=target.key,
                    scope_label=target.label,
                    tenant_id=target.tenant.pk if target.tenant else None,
                    scope=target.scope,
                    stream_id=target.stream.pk if target.stream else None,
                    topic_id=target.topic.pk if target.topic else None,
                    reason=row.reason,
                    created_at=row.created_at or now,
                ),
                target,
            )
        )
    return entries


def _insert_one_by_one(prepared, job) -> int:
    """The embedded default's path (SQLite): the same rules through the service."""
    added = 0
    for e, target in prepared:
        if Suppression.objects.filter(address_hash=e.address_hash, scope_key=e.scope_key).exists():
            continue
        services.suppress(
            target=target,
            address=e.address,
            reason=e.reason,
            origin=Origin.IMPORT,
            evidence=job,
            evidence_note=f"import #{job.pk} line {e.line}",
            created_at=e.created_at,
        )
        added += 1
    return added


def run_import(
    job: ImportJob, *, on_progress: Callable[[ImportJob], None] | None = None
) -> ImportJob:
    """Import the job's file chunk by chunk, keeping its counters and first errors current."""
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.RUNNING, started_at=timezone.now(), message=""
    )
    targets = _Targets(job.tenant)
    evidence_type = ContentType.objects.get_for_model(ImportJob)
    text = io.TextIOWrapper(
        gzip.GzipFile(fileobj=io.BytesIO(bytes(job.content))), encoding="utf-8-sig", newline=""
    )
    actor = audit.Actor(label=job.created_by_label or "import", via="import")
    try:
        _, rows = import_formats.read_rows(text, format_name=job.format_name)
        with audit.acting_as(actor):
            while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
                _run_chunk(job, chunk, targets, evidence_type, actor)
                job.refresh_from_db()
                if on_progress:
                    on_progress(job)
    except Exception as exc:
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.FAILED,
            finished_at=timezone.now(),
            message=f"{type(exc).__name__}: {exc}"[:2000],
        )
        raise
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.DONE, finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def _run_chunk(job, chunk, targets, evidence_type, actor) -> None:
    bad: list[dict] = []
    prepared = _prepare(chunk, targets, timezone.now(), bad)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            added = sql.insert_new_entries(
                [entry for entry, _ in prepared],
                evidence_type_id=evidence_type.pk,
                evidence_id=str(job.pk),
                note_prefix=f"import #{job.pk} line ",
                actor=actor,
            )
        else:
            added = _insert_one_by_one(prepared, job)
        room = max(0, ERRORS_KEPT - len(job.errors))
        ImportJob.objects.filter(pk=job.pk).update(
            rows_done=F("rows_done") + len(chunk),
            rows_added=F("rows_added") + added,
            rows_existing=F("rows_existing") + (len(prepared) - added),
            rows_bad=F("rows_bad") + len(bad),
            errors=job.errors + bad[:room],
        )
