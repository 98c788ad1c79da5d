"""Settings for the compliance service.

This is the one place that reads the environment. Every variable is listed in README.md with its
default. Without any variable set the service is in production mode (DEBUG off) and refuses to
start until the production secrets are set; `make run` and the tests say DEBUG=true and then need
nothing else (SQLite, eager Celery, console mail). The refusals are system checks, in
compliance/checks.py, so that every problem is reported at once before anything starts.
"""

import logging
import os
from pathlib import Path

from compliance import queues
from compliance.config import INSECURE_PREFIX, Env, database_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = Env()

# Safe by default: development mode must be asked for.
DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default=INSECURE_PREFIX + "secret-key-for-a-laptop")
# Key of the HMAC-SHA256 that turns a normalised address into its lookup hash. It must never
# change once addresses are stored: erased entries survive only as these hashes.
ADDRESS_HASH_KEY = env.str("ADDRESS_HASH_KEY", default=INSECURE_PREFIX + "address-hash-key")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Unsubscribe token keys, "ID:SECRET" separated by commas; the first signs new links, the others
# only read old ones (rotation without breaking links already sent). Key ids are 0 to 255.
UNSUBSCRIBE_TOKEN_KEYS = env.str(
    "UNSUBSCRIBE_TOKEN_KEYS", default="1:" + INSECURE_PREFIX + "unsubscribe-token-key"
)
# Public base of one-click links; RFC 8058 requires HTTPS in production.
UNSUBSCRIBE_BASE_URL = env.str(
    "UNSUBSCRIBE_BASE_URL", default="http://127.0.0.1:8000" if DEBUG else ""
).rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "anymail",
    "csp",
    "compliance",
    "suppression",
    "compliance.consent",
    "compliance.webhooks",
    "unsubscribe",
    "fbl",
    "compliance.dsr",
    "compliance.domains",
    "compliance.preflight",
    "compliance.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "compliance.middleware.ContentSecurityPolicyMiddleware",
    "compliance.middleware.RequestLogMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "compliance.middleware.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "compliance.urls"
WSGI_APPLICATION = "compliance.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": database_config(
        env.str("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    )
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The hottest writes (the one-click INSERT) run as prepared statements: compliance/prepared.py.
DB_PREPARED_STATEMENTS = env.bool("DB_PREPARED_STATEMENTS", default=True)
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Fail fast when PostgreSQL is unreachable: health checks and durable-capture fallbacks
    # must answer within a request's time, not after the OS TCP timeout.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int(
        "DB_CONNECT_TIMEOUT", default=3
    )
    # Django turns psycopg's prepared statements off (None). With them on, only a statement
    # run with prepare=True (compliance.prepared) is prepared: no other statement is run this
    # many times, and Django's own cursors bind on the client, which never prepares.
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = (
        2**31 - 1 if DB_PREPARED_STATEMENTS else None
    )

# --- Read replicas ----------------------------------------------------------------------------
# Streaming replicas of DATABASE_URL (comma-separated PostgreSQL URLs), the databases replica_0,
# replica_1, ... in order. Only the relay read paths read from them (compliance/replicas.py);
# writes and every other read stay on DATABASE_URL. A replica that does not answer or whose
# replay lags more than REPLICA_MAX_LAG_SECONDS is skipped for the primary; each process
# measures each replica's lag at most once per REPLICA_RECHECK_SECONDS.
REPLICA_DATABASE_URLS = [
    url.strip() for url in env.list("REPLICA_DATABASE_URLS", default=[]) if url.strip()
]
for _number, _url in enumerate(REPLICA_DATABASE_URLS):
    _replica = database_config(_url, variable="REPLICA_DATABASE_URLS")
    _replica["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    _replica["CONN_HEALTH_CHECKS"] = True
    if _replica["ENGINE"].endswith("postgresql"):
        # A replica that is down costs a relay read at most this (libpq's least, 2 s) before
        # the primary answers instead; the URL may set its own.
        _replica.setdefault("OPTIONS", {}).setdefault("connect_timeout", 2)
    # Test runs read the primary's test database through the replica's alias.
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES[f"replica_{_number}"] = _replica
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=5.0)
REPLICA_RECHECK_SECONDS = env.float("REPLICA_RECHECK_SECONDS", default=1.0)
DATABASE_ROUTERS = ["compliance.replicas.ReplicaRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The unsubscribe pages' per-client budgets live here. The default is per process; a shared
# cache (`rediscache://HOST:6379/1`) makes the budget one per client across processes and hosts.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# In development whitenoise serves straight from the apps' static folders, no collectstatic.
WHITENOISE_AUTOREFRESH = DEBUG
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Mail -------------------------------------------------------------------------------------
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST", "localhost")
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="compliance@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Compliance alerts go to these addresses. Deadline alerts (opt-outs and data-subject requests
# due soon or late) also go to every active user with an address who holds the "receive
# deadline alerts" permission (superusers included).
STAFF_ALERT_EMAILS = env.list("STAFF_ALERT_EMAILS", default=[])
# A mail server that hangs must not hold a sweep (and the rows it locked) for ever.
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=30.0)
# A deadline is "due soon" when it ends before the end of this many business days from today
# (0: only once its last day has begun).
DEADLINE_WARNING_BUSINESS_DAYS = env.int("DEADLINE_WARNING_BUSINESS_DAYS", default=1)

# --- Security (production defaults; `manage.py check --deploy` is clean with DEBUG off) ---------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancers probe over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
# How many proxies (load balancers) in front of the service append the client's address to
# X-Forwarded-For. The client is the address the outermost of them added; 0 reads REMOTE_ADDR.
# Per-client budgets, consent and opt-out evidence and the audit trail use it.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp). This default covers the JSON API, /healthz and any page
# without its own policy: nothing may load, submit, set a base URL or frame the response. The
# recipient pages, the admin and the API docs have their own, each allowing only what the page
# uses and no other origin (compliance/csp.py, described in README.md).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["compliance.authentication.BearerKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["compliance.permissions.DenyWithoutPermission"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "compliance.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # `format` is ours (import and export formats), not DRF's renderer switch.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Email compliance and suppression service",
    "DESCRIPTION": "Suppression checks, unsubscribe links, reports, consent and send decisions.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get their own components, so a required text field is documented as
    # non-blank (minLength 1) where it is sent, without claiming that of answers.
    "COMPONENT_SPLIT_REQUEST": True,
    # Enums named for what they are. Without a name, two enums of one field name ("status",
    # "kind") are both renamed after their components: the first two keep their old names.
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "suppression.models.ImportJob.Status",
        "KindEnum": "compliance.dsr.proof.KINDS",
        "CheckStatusEnum": "compliance.check_results.STATUSES",
        "PreflightCheckNameEnum": "compliance.preflight.checks.CHECK_NAMES",
        "StreamKindEnum": "compliance.preflight.api.STREAM_KINDS",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "compliance.schema.document_errors",
    ],
    # Served from our own static files: the docs page loads nothing from outside.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No badge image from validator.swagger.io: the page's policy forbids other origins.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
}
# How long a relay may cache a check answer (Cache-Control max-age).
SUPPRESSION_CHECK_CACHE_SECONDS = env.int("SUPPRESSION_CHECK_CACHE_SECONDS", default=30)
# The suppression list is hash-partitioned on the address hash (PostgreSQL), so that each
# partition's indexes stay small enough to keep in memory and vacuum on their own as the list
# grows; a check looks up one hash and reads one partition. Read by the migration that first
# partitions the list; `manage.py partition_suppressions` changes it on an existing list.
SUPPRESSION_PARTITIONS = env.int("SUPPRESSION_PARTITIONS", default=16)
# Largest CSV accepted for import (bytes).
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=200 * 1024 * 1024)
# How long each process may reuse API keys, tenants, streams and topics it has looked up.
LOOKUP_CACHE_SECONDS = env.float("LOOKUP_CACHE_SECONDS", default=10)
# How often an API key's last-used time is written: once per key per interval, not per request.
API_KEY_LAST_USED_INTERVAL = env.int("API_KEY_LAST_USED_INTERVAL", default=60)

# --- Unsubscribe -------------------------------------------------------------------------------
# Tokens never expire unless this is set; it may not be under 30 days (CAN-SPAM).
UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS = env.int("UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS", default=0)
# Domain of per-recipient `unsubscribe+TOKEN@DOMAIN` addresses; empty: links carry no mailto.
UNSUBSCRIBE_MAILTO_DOMAIN = env.str("UNSUBSCRIBE_MAILTO_DOMAIN", default="")
# Where one-click opt-outs are kept durably while the database cannot take them.
UNSUBSCRIBE_SPOOL_DIR = Path(env.str("UNSUBSCRIBE_SPOOL_DIR", default=str(BASE_DIR / "spool")))
# The same opt-out (recipient, list, scope) posted again within this window (fixed windows of
# this length) is answered like the first but stored once: mailbox providers retry, recipients
# click twice. An hour covers providers' retries and second clicks; a later repeat is stored
# again as evidence, and a recipient who resubscribes can always opt out again at once. 0: off.
UNSUBSCRIBE_REPEAT_WINDOW_SECONDS = env.int("UNSUBSCRIBE_REPEAT_WINDOW_SECONDS", default=3600)
# Per client IP: page views, invalid tokens and repeated opt-outs on /u/ over this many per
# period are answered 429. First opt-outs are never counted nor refused. 0: no limit.
UNSUBSCRIBE_RATE_LIMIT = env.int("UNSUBSCRIBE_RATE_LIMIT", default=120)
UNSUBSCRIBE_RATE_LIMIT_SECONDS = env.int("UNSUBSCRIBE_RATE_LIMIT_SECONDS", default=60)

# --- Inbound mail ----------------------------------------------------------------------------
# Larger messages are stored truncated to this many bytes, with a flag, never refused.
INBOUND_MAX_BYTES = env.int("INBOUND_MAX_BYTES", default=10 * 1024 * 1024)
# DKIM signing domains of trusted feedback loops: a report counts only when its signature
# verifies for one of them or a subdomain (DESIGN.md); others wait for staff review.
FBL_SENDER_DOMAINS = env.list("FBL_SENDER_DOMAINS", default=[])
# DNS servers ("IP", "IP:PORT", "[IPv6]:PORT") asked for DKIM keys; empty: the system resolver.
DKIM_NAMESERVERS = env.list("DKIM_NAMESERVERS", default=[])
# Seconds a DKIM key lookup may take before the result is a temporary error.
DKIM_DNS_TIMEOUT = env.float("DKIM_DNS_TIMEOUT", default=5.0)

# --- Domain health ---------------------------------------------------------------------------
# DNS servers ("IP", "IP:PORT", "[IPv6]:PORT") the sending-domain checks ask; empty: the system
# resolver. Every lookup of a check (SPF includes, DMARC, DKIM keys, MX) goes to these.
DOMAIN_NAMESERVERS = env.list("DOMAIN_NAMESERVERS", default=[])
# Seconds one lookup may take before the check says "DNS timeout".
DOMAIN_DNS_TIMEOUT = env.float("DOMAIN_DNS_TIMEOUT", default=3.0)

# --- Reports and bounces ----------------------------------------------------------------------
# The header our relays add to every message, carrying the recipient's token.
FBL_TRACE_HEADER = env.str("FBL_TRACE_HEADER", default="X-Compliance-Trace")
# Local-part prefix (a regex) of our VERP return paths: bounces+alice=example.com@...
FBL_VERP_PREFIX = env.str("FBL_VERP_PREFIX", default="bounces?")
# Soft bounces suppress (for commercial mail, until the entry expires) once an address has had
# this many within the window, counting at most one per day: one message's retries count once.
SOFT_BOUNCE_THRESHOLD = env.int("SOFT_BOUNCE_THRESHOLD", default=3)
SOFT_BOUNCE_WINDOW_DAYS = env.int("SOFT_BOUNCE_WINDOW_DAYS", default=14)
SOFT_BOUNCE_SUPPRESS_DAYS = env.int("SOFT_BOUNCE_SUPPRESS_DAYS", default=30)
# A report suppresses the recipients it ties to mail we sent (our token, trace header, VERP
# address, a sending identity); of the others, at most this many per message act without staff
# review: a forged bounce listing thousands of addresses cannot suppress them all.
REPORT_UNTIED_RECIPIENT_LIMIT = env.int("REPORT_UNTIED_RECIPIENT_LIMIT", default=10)

# --- Complaint rates ---------------------------------------------------------------------------
# Gmail and Yahoo (2024): keep the spam-complaint rate under 0.1% and never let it reach 0.3%.
# A day's rate over the warning line is flagged, over the alert line alerted (fractions: 0.001 is
# 0.1%); with fewer deliveries than the minimum a rate is shown but not judged. Alerts go to the
# recipients, else to STAFF_ALERT_EMAILS, else to every active staff user with an address.
COMPLAINT_RATE_WARNING = env.float("COMPLAINT_RATE_WARNING", default=0.001)
COMPLAINT_RATE_ALERT = env.float("COMPLAINT_RATE_ALERT", default=0.003)
COMPLAINT_RATE_MIN_DELIVERIES = env.int("COMPLAINT_RATE_MIN_DELIVERIES", default=100)
COMPLAINT_RATE_RECIPIENTS = env.list("COMPLAINT_RATE_RECIPIENTS", default=[])

# --- ESP tracking webhooks (django-anymail) ---------------------------------------------------
# The ESPs whose tracking webhooks answer at /api/v1/events/esp/<esp>/tracking/ (anymail's names:
# postmark, sendgrid, mailgun, amazon_ses, ...); any other is a 404. ESPs that sign webhooks need
# their anymail setting, given as ANYMAIL_<SETTING> (e.g. ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY);
# a listed ESP that is not set up stops the service at start (system check).
ESP_WEBHOOKS = env.list("ESP_WEBHOOKS", default=[])
# The "user:password" an operator-level ESP account sends as HTTP basic auth. Tenants' webhooks
# authenticate with their own API key instead (fbl/views/esp.py). Empty: only API keys work.
ANYMAIL_WEBHOOK_SECRET = env.str("ANYMAIL_WEBHOOK_SECRET", default="")
ANYMAIL = {
    name.removeprefix("ANYMAIL_"): value
    for name, value in os.environ.items()
    if name.startswith("ANYMAIL_") and name != "ANYMAIL_WEBHOOK_SECRET"
}

# --- Postfix policy server ---------------------------------------------------------------------
# What to answer when the database cannot be asked: commercial mail waits (nothing is sent
# unchecked), transactional mail goes (a password reset is not held up).
POLICY_FAIL_COMMERCIAL = env.str("POLICY_FAIL_COMMERCIAL", default="DEFER_IF_PERMIT")
POLICY_FAIL_TRANSACTIONAL = env.str("POLICY_FAIL_TRANSACTIONAL", default="DUNNO")
# The stream (TENANT/STREAM) of mail whose envelope sender matches no sending identity.
POLICY_DEFAULT_STREAM = env.str("POLICY_DEFAULT_STREAM", default="default/marketing")

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
# No broker configured: run tasks in-process, so the embedded default needs no other service.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis only (RabbitMQ hands a dead worker's unacknowledged task on as soon as its connection
# drops): a task taken by a worker that died is handed to another once this many seconds have
# passed since it was taken. It must be longer than the longest task (a 200 MB import takes
# minutes) and any retry's countdown, or Redis hands a task still running to a second worker;
# it is also about how long a killed worker's task waits. An hour, Celery's own default.
CELERY_VISIBILITY_TIMEOUT = env.float("CELERY_VISIBILITY_TIMEOUT", default=3600.0)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # Workers look for such tasks every tenth of the timeout (1 to 60 seconds), rather than
    # kombu's default of about every 100 seconds, so a short timeout is a short wait.
    "unacked_restore_interval": min(60.0, max(1.0, CELERY_VISIBILITY_TIMEOUT / 10)),
    "unacked_restore_throttle": 1,
}
# Apply a one-click opt-out inside its request (the embedded default), or record it and let a
# worker's sweep apply it within seconds (with a broker: the web tier does one INSERT per click).
UNSUBSCRIBE_APPLY_INLINE = env.bool("UNSUBSCRIBE_APPLY_INLINE", default=not CELERY_BROKER_URL)
# Double opt-in: how long a confirmation link stays valid, and how many confirmation mails one
# address may get in 24 hours (the API must not be a way to mail-bomb someone).
# The largest body `POST /api/v1/consents` reads: 10,000 records with their evidence.
CONSENT_MAX_BYTES = env.int("CONSENT_MAX_BYTES", default=50 * 1024 * 1024)
# Data-subject requests: days the verification link works, and days the requester's download
# of an access export works.
DSR_VERIFICATION_DAYS = env.int("DSR_VERIFICATION_DAYS", default=14)
DSR_EXPORT_DAYS = env.int("DSR_EXPORT_DAYS", default=7)
CONSENT_CONFIRMATION_DAYS = env.int("CONSENT_CONFIRMATION_DAYS", default=7)
CONSENT_CONFIRMATIONS_PER_DAY = env.int("CONSENT_CONFIRMATIONS_PER_DAY", default=3)

# Downstream webhooks: each attempt's time limit, the waits between tries (seconds; about a day
# in all, then a dead letter), how many POSTs run at once per endpoint and how many deliveries
# one query claims, how long one task drains an endpoint before handing over, and how often a
# process may queue a delivery task per endpoint (a burst of opt-outs queues a handful).
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_RETRY_DELAYS = env.list(
    "WEBHOOK_RETRY_DELAYS",
    cast=float,
    default=[5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800],
)
WEBHOOK_CONCURRENCY = env.int("WEBHOOK_CONCURRENCY", default=8)
WEBHOOK_BATCH = env.int("WEBHOOK_BATCH", default=200)
WEBHOOK_RUN_SECONDS = env.float("WEBHOOK_RUN_SECONDS", default=60.0)
WEBHOOK_KICK_SECONDS = env.float("WEBHOOK_KICK_SECONDS", default=1.0)
# Endpoints must be HTTPS on public addresses; development and tests also reach loopback.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=DEBUG)

# The dashboard rolls up what is new when it is opened: on by default without a broker (the
# embedded default has no celery beat to run `dashboard.roll_up`), off with one.
DASHBOARD_ROLL_UP_ON_VIEW = env.bool("DASHBOARD_ROLL_UP_ON_VIEW", default=not CELERY_BROKER_URL)

# One queue per kind of work (compliance/queues.py), so that workers applying opt-outs never sit
# behind a slow webhook endpoint or a long import (`celery worker -Q optouts` consumes one kind;
# a worker given no -Q, and `make worker`, consume them all). The webhook queue may be renamed.
WEBHOOK_QUEUE = env.str("WEBHOOK_QUEUE", default=queues.WEBHOOKS)
CELERY_TASK_DEFAULT_QUEUE = queues.DEFAULT
CELERY_TASK_ROUTES = queues.task_routes(webhook_queue=WEBHOOK_QUEUE)
CELERY_TASK_QUEUES = queues.task_queues(webhook_queue=WEBHOOK_QUEUE)

CELERY_BEAT_SCHEDULE = {
    # Retries of downstream webhooks that fell due, and deliveries a nudge missed.
    "deliver-webhooks": {
        "task": "webhooks.sweep",
        "schedule": env.float("WEBHOOK_SWEEP_EVERY_SECONDS", default=5.0),
    },
    # One-click opt-outs recorded by the web tier are applied within seconds.
    "apply-pending-unsubscribes": {
        "task": "unsubscribe.apply_pending",
        "schedule": env.float("UNSUBSCRIBE_APPLY_EVERY_SECONDS", default=2.0),
    },
    # Complaint rates of today and yesterday are judged, and staff told, every 15 minutes.
    "check-complaint-rates": {
        "task": "fbl.check_complaint_rates",
        "schedule": 15 * 60.0,
    },
    # Double opt-ins nobody confirmed are marked expired once an hour.
    # Unverified data-subject requests expire; verified ones not yet carried out are retried.
    "data-subject-requests": {
        "task": "dsr.sweep",
        "schedule": 10 * 60.0,
    },
    # Opt-outs and data-subject requests due soon or late: staff are mailed once per change.
    "sweep-opt-out-deadlines": {
        "task": "compliance.sweep_deadlines",
        "schedule": env.float("DEADLINE_SWEEP_EVERY_SECONDS", default=5 * 60.0),
    },
    "sweep-request-deadlines": {
        "task": "dsr.sweep_deadlines",
        "schedule": env.float("DEADLINE_SWEEP_EVERY_SECONDS", default=5 * 60.0),
    },
    # Every sending domain's SPF, DKIM, DMARC and MX are read again (daily by default).
    "check-sending-domains": {
        "task": "domains.check_all",
        "schedule": env.float("DOMAIN_CHECK_EVERY_SECONDS", default=24 * 3600.0),
    },
    # The dashboard's figures: the rows written since the last run, added to the roll-ups.
    "roll-up-dashboard": {
        "task": "dashboard.roll_up",
        "schedule": env.float("DASHBOARD_ROLL_UP_EVERY_SECONDS", default=60.0),
    },
    "expire-consent-confirmations": {
        "task": "consent.expire_confirmations",
        "schedule": 60 * 60.0,
    },
}

# --- Logging ----------------------------------------------------------------------------------
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
# Unknown values log as text at INFO only until the system checks refuse them (compliance.E013):
# failing here instead would end inside django.setup() with a traceback.
_log_format = LOG_FORMAT if LOG_FORMAT in ("text", "json") else "text"
_log_level = LOG_LEVEL if LOG_LEVEL in logging.getLevelNamesMapping() else "INFO"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": _log_format},
    },
    "root": {"handlers": ["console"], "level": _log_level},
    "loggers": {
        # Our request log replaces runserver's own access lines.
        "django.server": {"level": "WARNING"},
        "django.utils.autoreload": {"level": "WARNING"},
    },
}
