"""CSV exports of the list, streamed so that a large list never sits in memory."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.db.models import QuerySet

from suppression.models import Suppression

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
