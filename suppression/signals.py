"""What the suppression list tells the layers above it, without importing them.

`opted_out` is sent inside the transaction that records an opt-out (one `OptOutRequest`), so a
receiver's writes commit or roll back with it. Keyword arguments: `request` (the
OptOutRequest), `target` (suppression.scopes.Target), `address` (normalised) and `reason`."""

from django.dispatch import Signal

opted_out = Signal()
