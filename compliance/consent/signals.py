"""What the consent ledger tells the layers above it.

`withdrawn` is sent inside the transaction that records withdrawals, with `records` (the new
ConsentRecord rows whose action is a withdrawal)."""

from django.dispatch import Signal

withdrawn = Signal()
