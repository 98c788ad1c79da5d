"""The Celery queues, one per kind of work, and which task goes to which.

A worker started without `-Q` consumes every queue. An operator gives each kind its own
workers (`celery -A compliance worker -Q optouts`), so a backlog of one kind (a slow webhook
endpoint, a million-row import) never delays another (opt-outs that must be applied within the
deadline). `celery` is Celery's default queue: a task named in no route lands there. The tests
require every task of the app to have a route here.

No Django import: compliance/settings.py builds CELERY_TASK_ROUTES and CELERY_TASK_QUEUES from it.
"""

from __future__ import annotations

from kombu import Exchange, Queue

DEFAULT = "celery"
OPTOUTS = "optouts"  # applying recorded opt-outs (one-click and the like)
WEBHOOKS = "webhooks"  # deliveries to downstream endpoints, which wait on other systems
REPORTS = "reports"  # complaint and bounce report work
IMPORTS = "imports"  # suppression and consent imports: long, bulk
SWEEPS = "sweeps"  # periodic sweeps run by celery beat

# Every queue a worker that does all kinds of work consumes (`make worker`).
QUEUES = (DEFAULT, OPTOUTS, WEBHOOKS, REPORTS, IMPORTS, SWEEPS)

ROUTES: dict[str, str] = {
    "unsubscribe.apply_pending": OPTOUTS,
    "webhooks.deliver": WEBHOOKS,
    "webhooks.sweep": WEBHOOKS,
    "fbl.check_complaint_rates": REPORTS,
    "suppression.run_import_job": IMPORTS,
    "compliance.sweep_deadlines": SWEEPS,
    "compliance.ping": SWEEPS,
    "dsr.sweep": SWEEPS,
    "dsr.sweep_deadlines": SWEEPS,
    "dsr.carry_out": SWEEPS,
    "consent.expire_confirmations": SWEEPS,
    "dashboard.roll_up": SWEEPS,
    "domains.check_all": SWEEPS,
    "domains.check": SWEEPS,
}


def task_routes(*, webhook_queue: str = WEBHOOKS) -> dict[str, dict[str, str]]:
    """CELERY_TASK_ROUTES: each task's queue, the webhook tasks' on `webhook_queue` (the
    WEBHOOK_QUEUE setting)."""
    return {
        name: {"queue": webhook_queue if queue == WEBHOOKS else queue}
        for name, queue in ROUTES.items()
    }


def task_queues(*, webhook_queue: str = WEBHOOKS) -> list[Queue]:
    """CELERY_TASK_QUEUES: every queue, so a worker started without `-Q` does every kind of
    work. Each is declared as Celery declares a queue named by `-Q` alone (a direct exchange of
    the same name), so RabbitMQ finds queues made either way the same."""
    names = [webhook_queue if name == WEBHOOKS else name for name in QUEUES]
    return [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in names]
