"""Helpers that turn environment values into settings, failing with the variable's name.

Kept free of Django settings access so that `settings.py` stays the one place that reads the
environment.
"""

from __future__ import annotations

import environ
from django.core.exceptions import ImproperlyConfigured

_DATABASE_ENGINES = {
    "postgres": "django.db.backends.postgresql",
    "postgresql": "django.db.backends.postgresql",
    "pgsql": "django.db.backends.postgresql",
    "sqlite": "django.db.backends.sqlite3",
}

# Values that must never protect a production deployment.
INSECURE_PREFIX = "insecure-dev-only-"


class Env(environ.Env):
    """django-environ's reader, except that a value which does not parse (`SOFT_BOUNCE_THRESHOLD=
    three`) stops the service naming its variable instead of with a bare ValueError. Values that
    parse but are out of range are the system checks' (compliance/checks.py)."""

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{var} is malformed: {exc}") from None


def database_config(url: str, *, variable: str = "DATABASE_URL") -> dict:
    """Parse a database URL into a Django DATABASES entry.

    Raises ImproperlyConfigured naming `variable` when the URL is malformed or names an engine
    this service does not run on.
    """
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in _DATABASE_ENGINES:
        raise ImproperlyConfigured(
            f"{variable} is malformed: expected postgres://USER@HOST:PORT/NAME or "
            f"sqlite:///PATH, got {url!r}"
        )
    config = environ.Env.db_url_config(url)
    if not config.get("NAME"):
        raise ImproperlyConfigured(f"{variable} is malformed: no database name in {url!r}")
    config["ENGINE"] = _DATABASE_ENGINES[scheme]
    return config
