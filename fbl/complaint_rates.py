"""Complaint rates, as earlier callers name them: the writes are `fbl.services` (count,
add_delivery_counts, check), the reads `fbl.selectors`. Kept for `fbl/views/counts.py`; new code
imports those two modules.
"""

from fbl.selectors import (
    DIMENSIONS,
    GROUPINGS,
    RateRow,
    label,
    rates,
    thresholds,
)
from fbl.selectors import rate_alert_recipients as recipients
from fbl.services.complaint_rates import BatchResult, add_delivery_counts, check, count

__all__ = [
    "DIMENSIONS",
    "GROUPINGS",
    "BatchResult",
    "RateRow",
    "add_delivery_counts",
    "check",
    "count",
    "label",
    "rates",
    "recipients",
    "thresholds",
]
