"""Statements PostgreSQL parses and plans once per connection, for the hottest writes.

Django binds parameters on the client (psycopg's ClientCursor) and never prepares: the server
parses and plans every statement anew, which for a one-row INSERT of many columns is a good part
of the server's work. `cursor()` gives Django's own cursor wrapper (query logging, execute
wrappers, error translation) around a psycopg cursor that binds on the server and prepares each
statement the first time a connection runs it. `fetch_one()` runs one such statement as the
request's connection check as well.

Behind a connection pooler that cannot keep prepared statements (PgBouncer in transaction mode
before 1.21), set `DB_PREPARED_STATEMENTS=false`: the same cursor then binds on the server
without preparing.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from compliance.connection_check import as_connection_check


def _preparing_cursor_class():
    # Imported here: the PostgreSQL backend module needs psycopg, which SQLite setups may lack.
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):
        def execute(self, query, params=None, *, prepare=None, binary=None):
            if prepare is None:
                prepare = settings.DB_PREPARED_STATEMENTS
            return super().execute(query, params, prepare=prepare, binary=binary)

    return PreparingCursor


_cursor_class = None


def cursor():
    """A cursor on the default PostgreSQL connection whose statements are prepared. Parameters
    are bound by the server, so a string is sent untyped and cast to its column's type (an inet,
    a uuid), and `%s` is the only placeholder. Give it values as Python has them (datetimes,
    bytes, strings), not values converted for Django's client-side binding."""
    if connection.queries_logged:
        # Django logs a statement from the query text the cursor keeps, which psycopg does not
        # keep for a prepared one: with DEBUG or a test capturing queries, the plain cursor.
        return connection.cursor()
    global _cursor_class
    if _cursor_class is None:
        _cursor_class = _preparing_cursor_class()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        return connection.make_cursor(_cursor_class(connection.connection))


def fetch_one(sql: str, params) -> tuple | None:
    """Run one statement through `cursor()` and return its first row (None: it returned none).
    It is the request's connection check too (`compliance.connection_check`), so give it only a
    statement that may run twice."""
    return as_connection_check(connection, lambda: _fetch_one(sql, params))


def _fetch_one(sql: str, params) -> tuple | None:
    with cursor() as opened:
        opened.execute(sql, params)
        return opened.fetchone()
