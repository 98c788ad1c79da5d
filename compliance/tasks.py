"""Core tasks."""

import socket

from celery import shared_task


@shared_task(name="compliance.ping")
def ping() -> dict:
    """Answer from whichever worker runs it; used by health checks and the worker test."""
    return {"pong": True, "host": socket.gethostname()}
