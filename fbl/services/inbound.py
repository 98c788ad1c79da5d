"""Keeping inbound mail: the stored copy of every message, written before anything reads it."""

from __future__ import annotations

import gzip
import hashlib

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from fbl.models import InboundMessage
from fbl.provenance import OPERATOR, Provenance
from fbl.report import without_nul
from fbl.services import mentions


def store_inbound_message(
    raw: bytes,
    *,
    source: str,
    envelope_sender: str = "",
    envelope_recipient: str = "",
    provenance: Provenance = OPERATOR,
) -> tuple[InboundMessage, bool]:
    """Keep the message; the same bytes delivered again by the same source (tenant) are counted
    on the first copy. Returns (message, created). Raises DatabaseError when the database cannot
    take it."""
    digest = hashlib.sha256(raw).hexdigest()
    limit = settings.INBOUND_MAX_BYTES
    existing = InboundMessage.objects.filter(sha256=digest, tenant=provenance.tenant)
    if existing.update(times_received=F("times_received") + 1):
        return existing.get(), False
    try:
        with transaction.atomic():
            message = InboundMessage.objects.create(
                source=source,
                tenant=provenance.tenant,
                operator_level=provenance.operator_level,
                envelope_sender=envelope_sender[:320],
                envelope_recipient=envelope_recipient[:320],
                raw_gzip=gzip.compress(raw[:limit], compresslevel=6),
                size=len(raw),
                truncated=len(raw) > limit,
                sha256=digest,
            )
            mentions.index_message(message, raw[:limit])
    except IntegrityError:  # delivered twice at the same moment
        existing.update(times_received=F("times_received") + 1)
        return existing.get(), False
    return message, True


def mark_unprocessable(message: InboundMessage, *, error: Exception) -> None:
    """Leave a message that failed to process for staff review, with the error as its note."""
    InboundMessage.objects.filter(pk=message.pk).update(
        status=InboundMessage.Status.UNRECOGNISED,
        note=without_nul(f"processing failed: {type(error).__name__}: {error}")[:2000],
    )
