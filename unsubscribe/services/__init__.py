"""Every write of the unsubscribe app (STYLE.md: one services module per app holds every write).

`optouts`: recording and applying recipients' opt-outs, and the spool that keeps them while the
database is unreachable. `preferences`: the preference centre's form. Links and tokens are
`unsubscribe.links`, the preference centre's reads `unsubscribe.selectors`. Callers use the
names re-exported here: `from unsubscribe import services; services.record_or_capture(...)`.
"""

from unsubscribe.services.optouts import (
    UNREACHABLE,
    Breadth,
    Evidence,
    Outcome,
    apply_opt_out,
    apply_pending_opt_outs,
    background_drain,
    capture_opt_out,
    drain_spool,
    record_opt_out,
    record_or_capture,
    repeat_key,
    retire_repeat_keys,
    unsubscribe,
)
from unsubscribe.services.preferences import save_preferences

__all__ = [
    "UNREACHABLE",
    "Evidence",
    "Outcome",
    "Breadth",
    "apply_opt_out",
    "apply_pending_opt_outs",
    "background_drain",
    "capture_opt_out",
    "drain_spool",
    "record_opt_out",
    "record_or_capture",
    "repeat_key",
    "retire_repeat_keys",
    "save_preferences",
    "unsubscribe",
]
