"""Core tasks."""

import socket

from celery import shared_task

from compliance import alerts


@shared_task(name="compliance.ping")
def ping() -> dict:
    """Answer from whichever worker runs it; used by health checks and the worker test."""
    return {"pong": True, "host": socket.gethostname()}


@shared_task(name="compliance.sweep_deadlines")
def sweep_deadlines() -> int:
    """Mail staff about opt-outs whose deadline state rose (due soon, late); see
    compliance.alerts. Runs every DEADLINE_SWEEP_EVERY_SECONDS under celery beat. No retry: a
    sweep that fails records nothing, and the next one finds the same rows."""
    return alerts.sweep_opt_outs()
