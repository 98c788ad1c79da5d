"""What the suppression list tells the layers above it, without importing them.

Both signals are sent inside the transaction of the write they announce, so a receiver's writes
commit or roll back with it.

`changed`: an entry was added, re-added, given a weightier reason or lifted. Keyword arguments:
`suppression` (the row as written), `action` (the SuppressionEvent action), `address` (the
normalised address, None when it is not kept), `target` (suppression.scopes.Target) and
`opt_out` (the OptOutRequest the change records, or None).

`opted_out`: an opt-out was recorded (one `OptOutRequest`). Keyword arguments: `request` (the
OptOutRequest), `target` (suppression.scopes.Target), `address` (normalised) and `reason`.
"""

from django.dispatch import Signal

changed = Signal()
opted_out = Signal()
