"""CSV exports of the list, streamed so that a large list never sits in memory."""

from __future__ import annotations

import csv
import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

from django.db.models import QuerySet
from django.utils import timezone

from compliance.models import Stream, Tenant
from compliance.replicas import relay_reads
from suppression import mirror
from suppression.models import Suppression
from suppression.selectors import Cursor

# The generic import format's columns come first, so an export can be imported elsewhere.
ADDRESS_COLUMNS = ["email", "reason", "scope", "created_at", "tenant", "origin"]
# For partners: the keyed hash instead of the address, so nothing personal leaves the service.
HASH_COLUMNS = ["address_hmac_sha256", "reason", "scope", "created_at"]
FORMATS = ("csv", "hashes")


class _Line:
    """A file-like sink for csv.writer that hands back each written line."""

    def write(self, text: str) -> str:
        return text


def export_lines(rows: QuerySet[Suppression], *, fmt: str) -> Iterator[str]:
    writer = csv.writer(_Line())
    if fmt == "hashes":
        yield writer.writerow(HASH_COLUMNS)
        for row in rows.iterator(chunk_size=5000):
            yield writer.writerow(
                [
                    bytes(row.address_hash).hex(),
                    row.reason,
                    row.scope_label,
                    row.created_at.isoformat(),
                ]
            )
        return
    yield writer.writerow(ADDRESS_COLUMNS)
    for row in rows.filter(address__isnull=False).iterator(chunk_size=5000):
        yield writer.writerow(
            [
                row.address,
                row.reason,
                row.scope_label,
                row.created_at.isoformat(),
                row.tenant.slug if row.tenant else "*",
                row.origin,
            ]
        )


# A relay's local mirror: one hex hash per line after a header naming what the file holds and the
# change-feed cursor it is consistent with (docs/relays/mirror.md).
MIRROR_FORMAT = "suppression-hashes/1"


@dataclass(frozen=True)
class MirrorHeader:
    cursor: Cursor
    tenant: str  # slug, or * for every tenant
    stream: str  # slug, or * when the file holds every entry rather than one stream's
    kind: str  # commercial or transactional (the rule the mirror applies to changes), or all
    exported_at: datetime.datetime

    def line(self) -> str:
        return (
            f"# {MIRROR_FORMAT} cursor={self.cursor} tenant={self.tenant} stream={self.stream} "
            f"kind={self.kind} exported={self.exported_at.isoformat()}\n"
        )


def write_mirror_hashes(
    out: TextIO, *, tenant: Tenant | None, stream: Stream | None
) -> tuple[MirrorHeader, int]:
    """Write the hashes that block `stream` (or every entry of `tenant`, see
    `mirror.blocking_entries`) with their header; return the header and the number of hashes.
    Rows and cursor come from one snapshot, so no change falls between file and feed: on a
    read replica when one is healthy (a relay's mirror is a relay read)."""
    with relay_reads(), mirror.consistent_snapshot():
        header = MirrorHeader(
            cursor=mirror.feed_position(),
            tenant=tenant.slug if tenant else "*",
            stream=stream.slug if stream else "*",
            kind=("commercial" if stream.is_commercial else "transactional") if stream else "all",
            exported_at=timezone.now(),
        )
        out.write(header.line())
        count = 0
        hashes = mirror.blocking_hashes(tenant=tenant, stream=stream)
        for digest in hashes.iterator(chunk_size=10_000):
            out.write(bytes(digest).hex() + "\n")
            count += 1
    return header, count


def write_csv(out: TextIO, *, tenant: Tenant | None, stream: Stream | None) -> int:
    """Write the same entries as `write_mirror_hashes`, as the generic import's CSV (addresses;
    erased entries have none and are left out). Return the number of rows."""
    rows = mirror.blocking_entries(tenant=tenant, stream=stream)
    rows = rows.select_related("tenant", "stream", "topic__stream").order_by("id")
    count = -1  # the header line
    with relay_reads(), mirror.consistent_snapshot():
        for line in export_lines(rows, fmt="csv"):
            out.write(line)
            count += 1
    return count
