"""What the consent ledger tells the layers above it.

`withdrawn` is sent inside the transaction that records withdrawals, with `records` (the new
ConsentRecord rows whose action is a withdrawal).

`withdrawn_in_bulk` is sent inside the transaction that records the withdrawals of a batch of
opt-outs in one statement, with `rows` (consent.sql.Withdrawal tuples, in ledger order): what
`withdrawn` would have told of them, for receivers that write their own rows set-based.
"""

from django.dispatch import Signal

withdrawn = Signal()
withdrawn_in_bulk = Signal()
