"""The service's one Celery app.

Configured from Django settings (`CELERY_*`). Without `CELERY_BROKER_URL` tasks run eagerly in the
calling process, so the embedded default needs no broker.
"""

import logging
import os
import time

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "compliance.settings")

app = Celery("compliance")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

task_log = logging.getLogger("compliance.task")
_started: dict[str, float] = {}


@signals.task_prerun.connect
def _note_task_start(task_id=None, **_):
    _started[task_id] = time.monotonic()


@signals.task_postrun.connect
def _log_task(task_id=None, task=None, state=None, **_):
    # One line per task, like the request log: name, id, final state, duration.
    began = _started.pop(task_id, None)
    duration_ms = round((time.monotonic() - began) * 1000, 1) if began is not None else None
    task_log.info(
        "task %s %s %s",
        getattr(task, "name", "?"),
        state,
        task_id,
        extra={
            "task": getattr(task, "name", None),
            "task_id": task_id,
            "state": state,
            "duration_ms": duration_ms,
        },
    )
