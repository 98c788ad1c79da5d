"""What the suppression list tells the layers above it, without importing them.

Every signal is sent inside the transaction of the write it announces, so a receiver's writes
commit or roll back with it.

`changed`: an entry was added, re-added, given a weightier reason or lifted. Keyword arguments:
`suppression` (the row as written), `action` (the SuppressionEvent action), `address` (the
normalised address, None when it is not kept), `target` (suppression.scopes.Target) and
`opt_out` (the OptOutRequest the change records, or None).

`opted_out`: an opt-out was recorded (one `OptOutRequest`). Keyword arguments: `request` (the
OptOutRequest), `target` (suppression.scopes.Target), `address` (normalised) and `reason`.

`changed_in_bulk`: a batch of opt-outs was applied by one statement
(suppression.services.batches). Keyword argument `changes`: a list of `BulkChange`, one per
history event written, in the order applied. Each tells what `changed` would have told of it
and, when it carries an `opt_out`, what `opted_out` would have; a receiver writes its own rows
for the whole list at once.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, NamedTuple

from django.dispatch import Signal

if TYPE_CHECKING:
    from suppression.scopes import Target

changed = Signal()
opted_out = Signal()
changed_in_bulk = Signal()


class BulkOptOut(NamedTuple):
    """The OptOutRequest a change of a batch wrote (an add or re-add of an opt-out)."""

    id: int
    received_at: datetime.datetime
    channel: str
    applied_at: datetime.datetime
    provider_due_at: datetime.datetime
    can_spam_due_at: datetime.datetime


class BulkChange(NamedTuple):
    """One change of a batch: the entry as written and the opt-out that made it."""

    action: str  # the SuppressionEvent action: add, readd or reason
    target: Target
    address: str | None  # normalised; None when not kept
    address_hash: bytes
    suppression_id: int
    entry_reason: str  # the entry's reason once changed (the weightier one)
    origin: str  # the entry's origin
    expires_at: datetime.datetime | None
    updated_at: datetime.datetime
    reason: str  # the reason the opt-out gave (`opted_out`'s `reason`)
    opt_out: BulkOptOut | None  # None for a new reason of an entry already in force
