"""The suppression list's part of an erasure (compliance.dsr.erasure): the global `erasure`
entry first, so the address is blocked before anything else changes; then every entry of the
hash loses its address (an `erase` history event each), notes lose it, and imported files lose
its rows."""

from __future__ import annotations

import gzip
import json
import re

from django.db.models import Q

from suppression import erased
from suppression import erasure_steps as erasure
from suppression.models import ImportJob, Suppression, SuppressionEvent
from suppression.services import entries


@erasure.register("suppression_entry", order=10)
def add_erasure_entry(subject: erasure.Subject, batch: int) -> int:
    entries.suppress_erased(
        address_hash=subject.address_hash,
        evidence=subject.request,
        evidence_note=f"data-subject request #{subject.request.pk}",
    )
    return 0


@erasure.register("suppression_entries", order=20)
def erase_entries(subject: erasure.Subject, batch: int) -> int:
    wanted = Q(address__isnull=False)
    if subject.address:
        wanted |= erasure.mentions_q("evidence_note", subject.address)
    rows = list(
        Suppression.objects.select_for_update()
        .filter(Q(address_hash=subject.address_hash) & wanted)
        .order_by("pk")[:batch]
    )
    for row in rows:
        note = row.evidence_note
        if subject.address:
            note = erased.redact_text(note, subject.address, subject.placeholder)
        # By hash too: PostgreSQL then reads the one partition (suppression/partitioning.py).
        Suppression.objects.filter(pk=row.pk, address_hash=row.address_hash).update(
            address=None, evidence_note=note
        )
        row.address, row.evidence_note = None, note
        entries._append_event(
            row,
            SuppressionEvent.Action.ERASE,
            reason=row.reason,
            origin=row.origin,
            note=f"address erased (data-subject request #{subject.request.pk})",
        )
    return len(rows)


@erasure.register("suppression_history", order=30)
def erase_from_history(subject: erasure.Subject, batch: int) -> int:
    if not subject.address:
        return 0
    ids = Suppression.objects.filter(address_hash=subject.address_hash).values("pk")
    # The history is append-only (its default manager refuses updates); an erasure is the one
    # change allowed, and the database trigger checks it is only that (migration 0004).
    events = list(
        SuppressionEvent._base_manager.filter(suppression_id__in=ids)
        .filter(
            erasure.mentions_q("note", subject.address)
            | erasure.mentions_q("evidence_note", subject.address)
        )
        .order_by("pk")[:batch]
    )
    for event in events:
        SuppressionEvent._base_manager.filter(pk=event.pk).update(
            note=erased.redact_text(event.note, subject.address, subject.placeholder),
            evidence_note=erased.redact_text(
                event.evidence_note, subject.address, subject.placeholder
            ),
        )
    return len(events)


def _without_lines(content: bytes, pattern: re.Pattern[str]) -> bytes:
    text = gzip.decompress(content).decode("utf-8", "replace")
    kept = [line for line in text.splitlines(keepends=True) if not pattern.search(line)]
    return gzip.compress("".join(kept).encode("utf-8"), compresslevel=6)


@erasure.register("suppression_imports", order=40)
def erase_from_imports(subject: erasure.Subject, batch: int) -> int:
    """Imported files are kept compressed: each is read, and the address's rows (and its bad
    rows in the errors) are dropped. Imports are few; their files are read, not indexed."""
    if not subject.address:
        return 0
    pattern = erased.pattern(subject.address)
    changed = 0
    for job in ImportJob.objects.order_by("pk").iterator(chunk_size=20):
        content = bytes(job.content)
        text = gzip.decompress(content).decode("utf-8", "replace") if content else ""
        errors = json.dumps(job.errors, ensure_ascii=False)
        if not (pattern.search(text) or pattern.search(errors) or pattern.search(job.message)):
            continue
        kept_errors = [
            e for e in job.errors if not pattern.search(json.dumps(e, ensure_ascii=False))
        ]
        ImportJob.objects.filter(pk=job.pk).update(
            content=_without_lines(content, pattern) if content else content,
            errors=kept_errors,
            message=pattern.sub(subject.placeholder, job.message),
        )
        changed += 1
        if changed >= batch:
            break
    return changed
