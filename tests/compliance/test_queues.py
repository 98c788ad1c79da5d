"""Every task has a queue of its kind, and `make worker` consumes every queue."""

import re

import pytest

from compliance import queues
from compliance.celery import app
from tests.support import ROOT, run_python, service_env


def service_tasks() -> list[str]:
    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if not name.startswith("celery."))


def queue_of(task: str) -> str:
    return app.amqp.router.route({}, task)["queue"].name


def test_the_service_has_its_tasks():
    assert {"unsubscribe.apply_pending", "suppression.run_import_job", "webhooks.deliver"} <= set(
        service_tasks()
    )


@pytest.mark.parametrize("task", service_tasks())
def test_every_task_is_routed_to_a_queue_of_its_kind(task):
    # A new task must be given a queue in compliance/queues.py: one left out would land on the
    # default queue, which a worker given one kind of work (`-Q optouts`) never reads.
    assert task in queues.ROUTES, f"{task} has no route in compliance/queues.py ROUTES"
    assert queues.ROUTES[task] in queues.QUEUES
    assert queues.ROUTES[task] != queues.DEFAULT
    assert queue_of(task) == queues.ROUTES[task]


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("unsubscribe.apply_pending", "optouts"),
        ("webhooks.deliver", "webhooks"),
        ("webhooks.sweep", "webhooks"),
        ("fbl.check_complaint_rates", "reports"),
        ("suppression.run_import_job", "imports"),
        ("compliance.sweep_deadlines", "sweeps"),
        ("dsr.carry_out", "sweeps"),
        ("dashboard.roll_up", "sweeps"),
        ("domains.check", "sweeps"),
    ],
)
def test_each_kind_of_work_has_its_named_queue(task, queue):
    assert queue_of(task) == queue


def test_routes_name_only_tasks_that_exist():
    assert set(queues.ROUTES) <= set(service_tasks())


def test_a_task_nobody_routed_lands_on_the_default_queue():
    assert queue_of("no.such.task") == "celery"


def test_every_scheduled_task_is_a_routed_task(settings):
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in queues.ROUTES


def test_a_worker_given_no_queues_consumes_every_queue():
    # `celery -A compliance worker` without -Q consumes the app's queues.
    assert sorted(app.amqp.queues) == sorted(queues.QUEUES)
    for name, queue in app.amqp.queues.items():
        assert (queue.exchange.name, queue.exchange.type, queue.routing_key) == (
            name,
            "direct",
            name,
        )


def test_make_worker_consumes_every_queue():
    makefile = (ROOT / "Makefile").read_text()
    (consumed,) = re.findall(r"celery -A compliance worker .*--queues (\S+)", makefile)
    assert consumed.split(",") == list(queues.QUEUES)
    assert consumed == "celery,optouts,webhooks,reports,imports,sweeps"


def test_webhook_queue_renames_the_queue_of_both_webhook_tasks():
    result = run_python(
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "routes = settings.CELERY_TASK_ROUTES\n"
        "print(routes['webhooks.deliver']['queue'], routes['webhooks.sweep']['queue'],"
        " routes['unsubscribe.apply_pending']['queue'],"
        " sorted(q.name for q in settings.CELERY_TASK_QUEUES))",
        env=service_env(WEBHOOK_QUEUE="hooks-slow"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(maxsplit=3) == [
        "hooks-slow",
        "hooks-slow",
        "optouts",
        "['celery', 'hooks-slow', 'imports', 'optouts', 'reports', 'sweeps']\n",
    ]


def test_the_redis_visibility_timeout_is_a_setting():
    code = (
        "import django; django.setup()\n"
        "from compliance.celery import app\n"
        "print(app.conf.broker_transport_options['visibility_timeout'])"
    )
    default = run_python(code, env=service_env())
    short = run_python(code, env=service_env(CELERY_VISIBILITY_TIMEOUT="5"))
    assert (default.returncode, short.returncode) == (0, 0), default.stderr + short.stderr
    assert float(default.stdout) == 3600.0
    assert float(short.stdout) == 5.0
