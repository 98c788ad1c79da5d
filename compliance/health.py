"""Health of the parts the service cannot work without."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection

from compliance import replicas


@dataclass(frozen=True)
class HealthReport:
    database: str
    broker: str
    # Each read replica's state, when REPLICA_DATABASE_URLS names any. A replica that is down
    # or behind changes nothing else: relay reads go to the primary meanwhile.
    replicas: list[dict] | None = None

    @property
    def database_ok(self) -> bool:
        return self.database == "ok"

    def as_dict(self) -> dict:
        status = "ok" if self.database_ok and self.broker in ("ok", "eager") else "degraded"
        if not self.database_ok:
            status = "down"
        report = {"status": status, "database": self.database, "broker": self.broker}
        if self.replicas is not None:
            report["replicas"] = self.replicas
        return report


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


def replica_states() -> list[dict] | None:
    """Each replica measured now: alias, ok, lag_seconds (and error when not ok)."""
    if not replicas.configured_aliases():
        return None
    return [state.as_json() for state in replicas.replicas().measure_all()]


def check() -> HealthReport:
    return HealthReport(
        database=database_state(), broker=broker_state(), replicas=replica_states()
    )
