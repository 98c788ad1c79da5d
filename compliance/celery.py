"""The service's one Celery app.

Configured from Django settings (`CELERY_*`). Without `CELERY_BROKER_URL` tasks run eagerly in the
calling process, so the embedded default needs no broker.
"""

import logging
import os
import sys
import time

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "compliance.settings")

app = Celery("compliance")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

task_log = logging.getLogger("compliance.task")


@signals.worker_init.connect
@signals.beat_init.connect
def _refuse_to_start_on_errors(**_):
    # Celery runs Django's system checks at worker start but ignores what they find, and its
    # signals log a handler's exception rather than raise it: exit, as manage.py would.
    import django
    from django.apps import apps
    from django.core.exceptions import ImproperlyConfigured

    from compliance.checks import refuse_to_start_on_errors

    if not apps.ready:
        django.setup()
    try:
        refuse_to_start_on_errors("Celery")
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        raise SystemExit(1) from None


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
