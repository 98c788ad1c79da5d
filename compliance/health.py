"""Health of the parts the service cannot work without."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection


@dataclass(frozen=True)
class HealthReport:
    database: str
    broker: str

    @property
    def database_ok(self) -> bool:
        return self.database == "ok"

    def as_dict(self) -> dict:
        status = "ok" if self.database_ok and self.broker in ("ok", "eager") else "degraded"
        if not self.database_ok:
            status = "down"
        return {"status": status, "database": self.database, "broker": self.broker}


def database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        connection.close_if_unusable_or_obsolete()
        return f"unreachable: {type(exc).__name__}"
    return "ok"


def broker_state() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "eager"
    from compliance.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # kombu raises transport-specific errors
        return f"unreachable: {type(exc).__name__}"
    return "ok"


def check() -> HealthReport:
    return HealthReport(database=database_state(), broker=broker_state())
