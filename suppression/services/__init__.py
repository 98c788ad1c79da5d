"""Every write of the suppression app (STYLE.md: one services module per app holds every write).

`entries`: add and lift entries, with their history and opt-out records. `batches`: a batch of
opt-outs applied by one statement with the same results. `importing`: queue and run CSV imports
(`ImportJob`), whose bulk path is the COPY statement in `suppression/sql.py`.
Callers use the names re-exported here: `from suppression import services; services.suppress(...)`.
"""

from suppression.services.batches import OptOut, suppress_opt_outs
from suppression.services.entries import (
    CHANNEL_FOR_ORIGIN,
    Outcome,
    hash_key,
    lift,
    normalise_and_hash,
    reasons_in_force,
    suppress,
    suppress_erased,
)
from suppression.services.importing import create_job, queue_import, run_import

__all__ = [
    "CHANNEL_FOR_ORIGIN",
    "OptOut",
    "Outcome",
    "create_job",
    "hash_key",
    "lift",
    "normalise_and_hash",
    "queue_import",
    "reasons_in_force",
    "run_import",
    "suppress",
    "suppress_erased",
    "suppress_opt_outs",
]
