"""System checks of the settings: the service refuses to start while a setting is out of range
or, in production (DEBUG off), while a secret still has its development default.

The checks of each app's own settings live in that app (suppression/checks.py,
unsubscribe/checks.py, fbl/checks.py), so nothing here imports upward; the ids are listed here.
Django runs these before every management command (runserver, migrate, run_policy_server,
ingest_mail, ...). gunicorn and Celery do not act on them, so compliance/wsgi.py and the Celery
worker call `refuse_to_start_on_errors`. One function per concern; each message names the
variable and its hint says how to fix it. Ids:

E001 SECRET_KEY, E002 ADDRESS_HASH_KEY, E003 UNSUBSCRIBE_TOKEN_KEYS, E004 the tokens' maximum
age, E005 UNSUBSCRIBE_BASE_URL, E006 ALLOWED_HOSTS, E007 complaint-rate lines, E008 numbers out
of range, E009 POLICY_FAIL_*, E010 POLICY_DEFAULT_STREAM, E011 FBL_VERP_PREFIX, E012
DKIM_NAMESERVERS, E013 LOG_FORMAT and LOG_LEVEL, E014 FBL_TRACE_HEADER, E015
UNSUBSCRIBE_MAILTO_DOMAIN, E016 ANYMAIL_WEBHOOK_SECRET, E017 REPLICA_DATABASE_URLS.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from compliance.config import INSECURE_PREFIX

_NEW_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe({n}))'"


def refuse_to_start_on_errors(program: str) -> None:
    """Run every system check, as manage.py does before a command, and raise
    ImproperlyConfigured listing the errors: for programs that would otherwise start anyway."""
    from django.core.checks import run_checks

    errors = [m for m in run_checks() if m.is_serious() and not m.is_silenced()]
    if errors:
        listed = "\n".join(str(e) for e in sorted(errors, key=lambda e: e.id or ""))
        raise ImproperlyConfigured(
            f"{program} refuses to start: {len(errors)} setting(s) to fix.\n{listed}"
        )


def _production() -> bool:
    return not settings.DEBUG


def _secret_problem(name: str, value: str, *, min_length: int) -> str | None:
    """What is wrong with a production secret, or None. Never repeats the value."""
    if not value or value.startswith(INSECURE_PREFIX):
        return f"{name} must be set to a real secret when DEBUG is off"
    if len(value) < min_length:
        return f"{name} must be at least {min_length} characters long"
    return None


def _secret_error(name: str, value: str, *, min_length: int, id: str) -> list[Error]:
    problem = _secret_problem(name, value, min_length=min_length) if _production() else None
    if problem is None:
        return []
    hint = f"Set {name} to a random value, e.g. {_NEW_SECRET.format(n=min_length)}"
    return [Error(problem, hint=hint, id=id)]


@register
def check_secret_key(app_configs=None, **kwargs) -> list[Error]:
    return _secret_error("SECRET_KEY", settings.SECRET_KEY, min_length=50, id="compliance.E001")


@register
def check_address_hash_key(app_configs=None, **kwargs) -> list[Error]:
    return _secret_error(
        "ADDRESS_HASH_KEY", settings.ADDRESS_HASH_KEY, min_length=32, id="compliance.E002"
    )


@register
def check_unsubscribe_base_url(app_configs=None, **kwargs) -> list[Error]:
    url = settings.UNSUBSCRIBE_BASE_URL
    parts = urlsplit(url)
    if _production() and parts.scheme != "https":
        # RFC 8058 section 3.1: the one-click URI must be HTTPS.
        message = "UNSUBSCRIBE_BASE_URL must be an https:// URL when DEBUG is off"
    elif parts.scheme not in ("http", "https") or not parts.hostname:
        message = f"UNSUBSCRIBE_BASE_URL is not an http(s) URL with a host: {url!r}"
    else:
        return []
    hint = (
        "Set UNSUBSCRIBE_BASE_URL to the service's public base, e.g. https://compliance.example.com"
    )
    return [Error(message, hint=hint, id="compliance.E005")]


@register
def check_allowed_hosts(app_configs=None, **kwargs) -> list[Error]:
    if not _production() or settings.ALLOWED_HOSTS:
        return []
    return [
        Error(
            "ALLOWED_HOSTS must list the service's host names when DEBUG is off",
            hint="Set ALLOWED_HOSTS, e.g. compliance.example.com (comma-separated).",
            id="compliance.E006",
        )
    ]


@register
def check_complaint_rates(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    warning, alert = settings.COMPLAINT_RATE_WARNING, settings.COMPLAINT_RATE_ALERT
    if not 0 < warning < alert < 1:
        errors.append(
            Error(
                "COMPLAINT_RATE_WARNING and COMPLAINT_RATE_ALERT must be fractions with "
                f"0 < warning < alert < 1, got {warning} and {alert}",
                hint="Fractions, not percentages: 0.001 is 0.1% (the defaults are 0.001, 0.003).",
                id="compliance.E007",
            )
        )
    if settings.COMPLAINT_RATE_MIN_DELIVERIES < 0:
        errors.append(
            Error(
                "COMPLAINT_RATE_MIN_DELIVERIES must be 0 or more, "
                f"got {settings.COMPLAINT_RATE_MIN_DELIVERIES}",
                hint="Set COMPLAINT_RATE_MIN_DELIVERIES to a count of deliveries (default 100).",
                id="compliance.E007",
            )
        )
    return errors


def _number_bounds() -> list[tuple[str, float | None, float, bool]]:
    """(variable, its value, the least allowed, whether the least itself is allowed) of every
    plain number with a bound: a new one needs only a row here."""
    db = settings.DATABASES["default"]
    return [
        ("SOFT_BOUNCE_THRESHOLD", settings.SOFT_BOUNCE_THRESHOLD, 1, True),
        ("SOFT_BOUNCE_WINDOW_DAYS", settings.SOFT_BOUNCE_WINDOW_DAYS, 1, True),
        ("SOFT_BOUNCE_SUPPRESS_DAYS", settings.SOFT_BOUNCE_SUPPRESS_DAYS, 1, True),
        ("INBOUND_MAX_BYTES", settings.INBOUND_MAX_BYTES, 1, True),
        ("IMPORT_MAX_BYTES", settings.IMPORT_MAX_BYTES, 1, True),
        ("DKIM_DNS_TIMEOUT", settings.DKIM_DNS_TIMEOUT, 0, False),
        ("SUPPRESSION_CHECK_CACHE_SECONDS", settings.SUPPRESSION_CHECK_CACHE_SECONDS, 0, True),
        ("LOOKUP_CACHE_SECONDS", settings.LOOKUP_CACHE_SECONDS, 0, True),
        ("API_KEY_LAST_USED_INTERVAL", settings.API_KEY_LAST_USED_INTERVAL, 0, True),
        ("SECURE_HSTS_SECONDS", settings.SECURE_HSTS_SECONDS, 0, True),
        ("DB_CONN_MAX_AGE", db.get("CONN_MAX_AGE"), 0, True),
        (
            "UNSUBSCRIBE_REPEAT_WINDOW_SECONDS",
            settings.UNSUBSCRIBE_REPEAT_WINDOW_SECONDS,
            0,
            True,
        ),
        ("UNSUBSCRIBE_RATE_LIMIT", settings.UNSUBSCRIBE_RATE_LIMIT, 0, True),
        ("UNSUBSCRIBE_RATE_LIMIT_SECONDS", settings.UNSUBSCRIBE_RATE_LIMIT_SECONDS, 1, True),
        ("REPORT_UNTIED_RECIPIENT_LIMIT", settings.REPORT_UNTIED_RECIPIENT_LIMIT, 0, True),
        ("TRUSTED_PROXY_COUNT", settings.TRUSTED_PROXY_COUNT, 0, True),
        ("DB_CONNECT_TIMEOUT", db.get("OPTIONS", {}).get("connect_timeout"), 1, True),
        ("REPLICA_MAX_LAG_SECONDS", settings.REPLICA_MAX_LAG_SECONDS, 0, False),
        ("REPLICA_RECHECK_SECONDS", settings.REPLICA_RECHECK_SECONDS, 0, True),
        (
            "UNSUBSCRIBE_APPLY_EVERY_SECONDS",
            settings.CELERY_BEAT_SCHEDULE["apply-pending-unsubscribes"]["schedule"],
            0,
            False,
        ),
        ("DEADLINE_WARNING_BUSINESS_DAYS", settings.DEADLINE_WARNING_BUSINESS_DAYS, 0, True),
        ("WEBHOOK_TIMEOUT_SECONDS", settings.WEBHOOK_TIMEOUT_SECONDS, 0, False),
        ("WEBHOOK_CONCURRENCY", settings.WEBHOOK_CONCURRENCY, 1, True),
        ("WEBHOOK_BATCH", settings.WEBHOOK_BATCH, 1, True),
        ("WEBHOOK_RUN_SECONDS", settings.WEBHOOK_RUN_SECONDS, 0, False),
        ("CELERY_VISIBILITY_TIMEOUT", settings.CELERY_VISIBILITY_TIMEOUT, 0, False),
        ("WEBHOOK_KICK_SECONDS", settings.WEBHOOK_KICK_SECONDS, 0, True),
        (
            "WEBHOOK_RETRY_DELAYS",
            min(settings.WEBHOOK_RETRY_DELAYS, default=0),
            0,
            True,
        ),
        (
            "WEBHOOK_SWEEP_EVERY_SECONDS",
            settings.CELERY_BEAT_SCHEDULE["deliver-webhooks"]["schedule"],
            0,
            False,
        ),
        (
            "DEADLINE_SWEEP_EVERY_SECONDS",
            settings.CELERY_BEAT_SCHEDULE["sweep-opt-out-deadlines"]["schedule"],
            0,
            False,
        ),
        (
            "DASHBOARD_ROLL_UP_EVERY_SECONDS",
            settings.CELERY_BEAT_SCHEDULE["roll-up-dashboard"]["schedule"],
            0,
            False,
        ),
    ]


@register
def check_numbers(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    for name, value, least, inclusive in _number_bounds():
        if value is None or value > least or (inclusive and value == least):
            continue
        bound = f"{least} or more" if inclusive else f"more than {least}"
        errors.append(
            Error(
                f"{name} must be {bound}, got {value}",
                hint=f"Set {name} as README.md's Configuration table describes.",
                id="compliance.E008",
            )
        )
    return errors


@register
def check_replicas(app_configs=None, **kwargs) -> list[Error]:
    # A replica is a PostgreSQL streaming standby of the primary: the lag query and the change
    # feed's snapshot positions are PostgreSQL's, and SQLite has no replicas.
    if not settings.REPLICA_DATABASE_URLS:
        return []
    hint = (
        "Set REPLICA_DATABASE_URLS to the PostgreSQL URLs of streaming replicas of DATABASE_URL, "
        "e.g. postgres://USER@replica1:5432/NAME,postgres://USER@replica2:5432/NAME, or unset it."
    )
    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return [
            Error(
                "REPLICA_DATABASE_URLS needs DATABASE_URL to be PostgreSQL",
                hint=hint,
                id="compliance.E017",
            )
        ]
    errors = []
    for number, url in enumerate(settings.REPLICA_DATABASE_URLS):
        if not settings.DATABASES[f"replica_{number}"]["ENGINE"].endswith("postgresql"):
            errors.append(
                Error(
                    f"REPLICA_DATABASE_URLS: replica {number} is not a PostgreSQL URL: "
                    f"{url.partition('://')[0]}://...",
                    hint=hint,
                    id="compliance.E017",
                )
            )
    return errors


@register
def check_logging(app_configs=None, **kwargs) -> list[Error]:
    # settings.py falls back to text and INFO for unknown values, so that Django can start far
    # enough to report them here instead of failing inside logging.config with a traceback.
    errors = []
    if settings.LOG_FORMAT not in ("text", "json"):
        errors.append(
            Error(
                f"LOG_FORMAT must be 'text' or 'json', got {settings.LOG_FORMAT!r}",
                hint="Set LOG_FORMAT to text or json.",
                id="compliance.E013",
            )
        )
    if settings.LOG_LEVEL not in logging.getLevelNamesMapping():
        errors.append(
            Error(
                f"LOG_LEVEL is not a log level: {settings.LOG_LEVEL!r}",
                hint="Set LOG_LEVEL to DEBUG, INFO, WARNING, ERROR or CRITICAL.",
                id="compliance.E013",
            )
        )
    return errors


@register
def check_anymail_webhook_secret(app_configs=None, **kwargs) -> list[Error]:
    # Empty is safe: only API keys are then accepted (fbl/views/esp.py). A value set must be the
    # USER:PASSWORD pair an ESP sends as basic auth, or no ESP could ever match it; and it makes
    # its sender operator-level, so in production it must not be guessable.
    value = settings.ANYMAIL_WEBHOOK_SECRET
    if not value:
        return []
    hint = (
        "Set ANYMAIL_WEBHOOK_SECRET to USER:PASSWORD with a random password, e.g. "
        f"webhook:$({_NEW_SECRET.format(n=24)}), or leave it empty to accept only API keys."
    )
    user, colon, password = value.partition(":")
    if not (user and colon and password):
        message = "ANYMAIL_WEBHOOK_SECRET must be USER:PASSWORD"
    elif _production():
        message = _secret_problem("ANYMAIL_WEBHOOK_SECRET's password", password, min_length=16)
    else:
        message = None
    return [Error(message, hint=hint, id="compliance.E016")] if message else []
