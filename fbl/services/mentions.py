"""The erasure index: which stored messages and relay events name which address (by hash).

Written with each message and event, so an erasure reads a few indexed rows instead of every
stored body. The cost on ingestion: one regex pass over the message (and over each encoded part,
when it has any) and one bulk insert.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.conf import settings

from fbl import redaction
from fbl.models import InboundMessage, Mention, RelayEvent
from suppression import addresses

# A hostile message could name thousands of addresses; an erasure still finds the first ones.
MAX_MENTIONS = 1000


def _hashes(found: Iterable[str]) -> set[bytes]:
    # The batch check's own bulk hashing (its fast path for plain ASCII addresses); tokens that
    # are not addresses (message ids often look like one) are left out.
    tokens = sorted(found)[: MAX_MENTIONS * 2]
    by_hash, _ = addresses.hash_many(tokens, settings.ADDRESS_HASH_KEY.encode())
    return set(sorted(by_hash)[:MAX_MENTIONS])


def index_message(message: InboundMessage, raw: bytes) -> None:
    hashes = _hashes(redaction.addresses_mentioned(raw) | _envelope(message))
    Mention.objects.bulk_create(Mention(address_hash=h, message_id=message.pk) for h in hashes)


def _envelope(message: InboundMessage) -> set[str]:
    return {a.lower() for a in (message.envelope_sender, message.envelope_recipient) if a}


def index_relay_event(event: RelayEvent) -> None:
    if not event.record:
        return
    text = json.dumps(event.record, ensure_ascii=False)
    hashes = _hashes(redaction.addresses_in_text(text))
    Mention.objects.bulk_create(Mention(address_hash=h, relay_event_id=event.pk) for h in hashes)
