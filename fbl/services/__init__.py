"""The reports app's writes (STYLE.md: one services module per app holds every write).

`inbound`: storing inbound mail before anything reads it. `reports`: acting on feedback and
bounce reports and relay events. `complaint_rates`: counting deliveries and feedback, and raising
complaint-rate alerts. Callers use the names re-exported here:
`from fbl import services; services.process(message)`.
"""

from fbl.services.complaint_rates import BatchResult, add_delivery_counts, check, count
from fbl.services.inbound import mark_unprocessable, store_inbound_message
from fbl.services.reports import (
    Tally,
    accept,
    act,
    check_trust,
    process,
    record_handled_mail,
    record_relay_event,
    reject,
)

__all__ = [
    "BatchResult",
    "Tally",
    "accept",
    "act",
    "add_delivery_counts",
    "check",
    "check_trust",
    "count",
    "mark_unprocessable",
    "process",
    "record_handled_mail",
    "record_relay_event",
    "reject",
    "store_inbound_message",
]
