"""The reports app's writes (STYLE.md: one services module per app holds every write).

`inbound`: storing inbound mail before anything reads it. `reports`: acting on feedback and
bounce reports and relay events. `complaint_rates`: counting deliveries and feedback, and raising
complaint-rate alerts. Callers use the names re-exported here:
`from fbl import services; services.act_on_report(message)`.
"""

from fbl.services.complaint_rates import (
    BatchResult,
    add_delivery_counts,
    count_for_rates,
    judge_complaint_rates,
)
from fbl.services.inbound import mark_unprocessable, store_inbound_message
from fbl.services.reports import (
    Tally,
    accept,
    act_on_report,
    carry_out,
    check_trust,
    record_handled_mail,
    record_relay_event,
    reject,
)

__all__ = [
    "BatchResult",
    "Tally",
    "accept",
    "carry_out",
    "add_delivery_counts",
    "judge_complaint_rates",
    "check_trust",
    "count_for_rates",
    "mark_unprocessable",
    "act_on_report",
    "record_handled_mail",
    "record_relay_event",
    "reject",
    "store_inbound_message",
]
