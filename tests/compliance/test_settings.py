"""Configuration comes from the environment, and production refuses unsafe defaults.

The refusals are system checks (compliance/checks.py and each app's checks.py): `manage.py`
reports them before any command, and the web service and the Celery worker run them at start.
Each names the variable.
"""

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from compliance import checks
from tests.support import ROOT, require_program, run_manage, run_python, service_env
from unsubscribe import checks as unsubscribe_checks

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k" * 20 + "-a-real-secret-key-of-sufficient-length-0123",
    "ADDRESS_HASH_KEY": "h" * 40,
    "ALLOWED_HOSTS": "compliance.example.com",
    "UNSUBSCRIBE_TOKEN_KEYS": "2:" + "t" * 40 + ",1:" + "o" * 40,
    "UNSUBSCRIBE_BASE_URL": "https://compliance.example.com",
    "DATABASE_URL": "sqlite:////tmp/compliance-settings-test.sqlite3",
}


def test_production_settings_pass_the_deploy_checklist():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", env=service_env(**PRODUCTION)
    )
    assert result.returncode == 0, result.stderr.decode()
    assert "no issues" in result.stdout.decode()


@pytest.mark.parametrize(
    "variable",
    [
        "SECRET_KEY",
        "ADDRESS_HASH_KEY",
        "ALLOWED_HOSTS",
        "UNSUBSCRIBE_TOKEN_KEYS",
        "UNSUBSCRIBE_BASE_URL",
    ],
)
def test_production_refuses_to_start_without_a_required_setting(variable):
    env = service_env(**PRODUCTION)
    del env[variable]
    result = run_manage("check", env=env)
    assert result.returncode != 0
    stderr = result.stderr.decode()
    assert variable in stderr
    assert "Traceback" not in stderr


def test_production_refuses_a_short_secret_key():
    result = run_manage("check", env=service_env(**{**PRODUCTION, "SECRET_KEY": "short"}))
    assert result.returncode != 0
    assert "SECRET_KEY must be at least 50 characters" in result.stderr.decode()


@pytest.mark.parametrize(
    "url", ["not a url", "mysql://root@localhost/db", "postgres://postgres@127.0.0.1:5432/"]
)
def test_malformed_database_url_stops_with_the_variable_named(url):
    result = run_manage("check", env=service_env(DATABASE_URL=url))
    assert result.returncode == 2
    assert "DATABASE_URL is malformed" in result.stderr.decode()


@pytest.mark.parametrize(
    ("variable", "value"), [("UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS", "thirty"), ("DKIM_DNS_TIMEOUT", "x")]
)
def test_a_value_that_is_not_a_number_stops_with_the_variable_named(variable, value):
    result = run_manage("check", env=service_env(**{variable: value}))
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert f"configuration error: {variable} is malformed" in stderr
    assert "Traceback" not in stderr


def test_unknown_log_format_is_refused():
    result = run_manage("check", env=service_env(LOG_FORMAT="xml"))
    assert result.returncode != 0
    stderr = result.stderr.decode()
    assert "(compliance.E013) LOG_FORMAT must be 'text' or 'json', got 'xml'" in stderr
    assert "Traceback" not in stderr


def test_embedded_default_needs_no_other_service():
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, s.EMAIL_BACKEND)"
    )
    result = run_python(code, env=service_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "True",
        "django.core.mail.backends.console.EmailBackend",
    ]


def test_production_refuses_plain_http_unsubscribe_links():
    env = service_env(**{**PRODUCTION, "UNSUBSCRIBE_BASE_URL": "http://compliance.example.com"})
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "UNSUBSCRIBE_BASE_URL must be an https:// URL" in result.stderr.decode()


# --- DEBUG is off unless asked for --------------------------------------------------------------

PRINT_DEBUG = "from django.conf import settings; print(settings.DEBUG)"


def test_without_debug_set_the_service_is_in_production_mode():
    env = service_env()
    del env["DEBUG"]
    result = run_python(PRINT_DEBUG, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_development_mode_with_its_defaults_passes_the_checks():
    result = run_manage("check", env=service_env(DEBUG="true"))
    assert result.returncode == 0, result.stderr.decode()
    assert "no issues" in result.stdout.decode()


def test_production_with_the_development_secrets_lists_each_of_them():
    env = service_env(**PRODUCTION)
    for variable in ("SECRET_KEY", "ADDRESS_HASH_KEY", "UNSUBSCRIBE_TOKEN_KEYS"):
        del env[variable]
    result = run_manage("check", env=env)
    assert result.returncode != 0
    stderr = result.stderr.decode()
    for check, variable in (
        ("E001", "SECRET_KEY"),
        ("E002", "ADDRESS_HASH_KEY"),
        ("E003", "UNSUBSCRIBE_TOKEN_KEYS (key 1)"),
    ):
        assert f"(compliance.{check}) {variable} must be set to a real secret" in stderr
    assert "Traceback" not in stderr


# --- settings out of range ----------------------------------------------------------------------

# Each bad value, and the check and words that must report it.
BAD_SETTINGS = {
    "UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS": ("10", "E004", "UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS is 10"),
    "UNSUBSCRIBE_TOKEN_KEYS": ("x:secret", "E003", "UNSUBSCRIBE_TOKEN_KEYS is malformed"),
    "COMPLAINT_RATE_WARNING": ("0.5", "E007", "COMPLAINT_RATE_WARNING and COMPLAINT_RATE_ALERT"),
    "COMPLAINT_RATE_MIN_DELIVERIES": ("-1", "E007", "COMPLAINT_RATE_MIN_DELIVERIES must be"),
    "SOFT_BOUNCE_THRESHOLD": ("0", "E008", "SOFT_BOUNCE_THRESHOLD must be 1 or more"),
    "SOFT_BOUNCE_WINDOW_DAYS": ("0", "E008", "SOFT_BOUNCE_WINDOW_DAYS must be 1 or more"),
    "SOFT_BOUNCE_SUPPRESS_DAYS": ("-3", "E008", "SOFT_BOUNCE_SUPPRESS_DAYS must be 1 or more"),
    "INBOUND_MAX_BYTES": ("0", "E008", "INBOUND_MAX_BYTES must be 1 or more"),
    "IMPORT_MAX_BYTES": ("-1", "E008", "IMPORT_MAX_BYTES must be 1 or more"),
    "DKIM_DNS_TIMEOUT": ("0", "E008", "DKIM_DNS_TIMEOUT must be more than 0"),
    "WEBHOOK_TIMEOUT_SECONDS": ("0", "E008", "WEBHOOK_TIMEOUT_SECONDS must be more than 0"),
    "WEBHOOK_CONCURRENCY": ("0", "E008", "WEBHOOK_CONCURRENCY must be 1 or more"),
    "WEBHOOK_RETRY_DELAYS": ("5,-1", "E008", "WEBHOOK_RETRY_DELAYS must be 0 or more"),
    "CELERY_VISIBILITY_TIMEOUT": ("0", "E008", "CELERY_VISIBILITY_TIMEOUT must be more than 0"),
    "DASHBOARD_ROLL_UP_EVERY_SECONDS": (
        "0",
        "E008",
        "DASHBOARD_ROLL_UP_EVERY_SECONDS must be more than 0",
    ),
    "POLICY_FAIL_COMMERCIAL": ("PERMIT", "E009", "POLICY_FAIL_COMMERCIAL is not a policy fail"),
    "POLICY_FAIL_TRANSACTIONAL": ("OK", "E009", "POLICY_FAIL_TRANSACTIONAL is not a policy fail"),
    "POLICY_DEFAULT_STREAM": ("marketing", "E010", "POLICY_DEFAULT_STREAM must be TENANT/STREAM"),
    "FBL_VERP_PREFIX": ("bounces(", "E011", "FBL_VERP_PREFIX is not a regular expression"),
    "DKIM_NAMESERVERS": ("dns.google", "E012", "DKIM_NAMESERVERS cannot be used"),
    "LOG_FORMAT": ("xml", "E013", "LOG_FORMAT must be 'text' or 'json'"),
    "LOG_LEVEL": ("loud", "E013", "LOG_LEVEL is not a log level"),
    "FBL_TRACE_HEADER": ("X Trace:", "E014", "FBL_TRACE_HEADER is not a header field name"),
    "UNSUBSCRIBE_MAILTO_DOMAIN": ("u@x.example", "E015", "UNSUBSCRIBE_MAILTO_DOMAIN is not a"),
    "ANYMAIL_WEBHOOK_SECRET": ("no-colon", "E016", "ANYMAIL_WEBHOOK_SECRET must be USER:PASSWORD"),
}


def test_check_lists_every_setting_out_of_range_at_once():
    env = service_env(**{variable: value for variable, (value, _, _) in BAD_SETTINGS.items()})
    result = run_manage("check", env=env)
    assert result.returncode != 0
    stderr = result.stderr.decode()
    for _, check, words in BAD_SETTINGS.values():
        assert f"(compliance.{check}) {words}" in stderr
    assert "Traceback" not in stderr


def _errors(check, **values):
    with override_settings(**values):
        return [(e.id, e.msg) for e in check(None)]


@pytest.mark.parametrize("days", [0, 30, 365])
def test_tokens_may_never_expire_or_live_30_days_or_more(days):
    assert (
        _errors(
            unsubscribe_checks.check_unsubscribe_token_max_age, UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS=days
        )
        == []
    )


@pytest.mark.parametrize("days", [1, 10, 29, -1])
def test_a_token_age_under_30_days_is_refused_before_any_link_fails(days):
    # CAN-SPAM: the opt-out must keep working for 30 days; unsubscribe/tokens.py would refuse
    # the codec at the first one-click and lose the opt-out.
    [(check, message)] = _errors(
        unsubscribe_checks.check_unsubscribe_token_max_age, UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS=days
    )
    assert check == "compliance.E004"
    assert f"UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS is {days}" in message


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        ("one:s3cret", "the key id 'one' is not a number from 0 to 255"),
        ("256:s3cret", "the key id '256' is not a number from 0 to 255"),
        ("1:", "key 1 has an empty secret"),
        ("s3cret", "entry 1 is not ID:SECRET"),
        ("2:s3cret,2:s3cret", "entry 2: key id 2 is listed twice"),
        ("2:s3cret,", "entry 2 is not ID:SECRET"),
    ],
)
def test_malformed_token_keys_are_refused_without_showing_the_secret(keys, words):
    [(check, message)] = _errors(
        unsubscribe_checks.check_unsubscribe_token_keys, UNSUBSCRIBE_TOKEN_KEYS=keys
    )
    assert check == "compliance.E003"
    assert words in message
    assert "s3cret" not in message


def test_well_formed_token_keys_pass():
    keys = "7:" + "n" * 40 + ",0:" + "o" * 40
    assert (
        _errors(unsubscribe_checks.check_unsubscribe_token_keys, UNSUBSCRIBE_TOKEN_KEYS=keys) == []
    )


@pytest.mark.parametrize("secret", ["user:password", "esp:insecure-dev-only-webhook"])
def test_production_refuses_a_placeholder_webhook_secret(secret):
    [(check, message)] = _errors(
        checks.check_anymail_webhook_secret, DEBUG=False, ANYMAIL_WEBHOOK_SECRET=secret
    )
    assert check == "compliance.E016"
    assert message.startswith("ANYMAIL_WEBHOOK_SECRET's password must be")


@pytest.mark.parametrize("secret", ["", "esp:" + "r4nd0m" * 4])
def test_production_accepts_no_webhook_secret_or_a_random_one(secret):
    # Empty is safe: only API keys are then accepted.
    assert (
        _errors(checks.check_anymail_webhook_secret, DEBUG=False, ANYMAIL_WEBHOOK_SECRET=secret)
        == []
    )


# --- programs that do not run the checks themselves ------------------------------------------


def test_the_web_service_refuses_to_import_with_a_development_secret_in_production():
    env = service_env(**PRODUCTION)
    del env["ADDRESS_HASH_KEY"]
    result = run_python("import compliance.wsgi", env=env)
    assert result.returncode != 0
    assert "the web service refuses to start" in result.stderr
    assert "(compliance.E002) ADDRESS_HASH_KEY must be set to a real secret" in result.stderr


def test_the_web_service_imports_with_production_settings():
    result = run_python("import compliance.wsgi", env=service_env(**PRODUCTION))
    assert result.returncode == 0, result.stderr


def test_the_celery_worker_refuses_to_start_with_a_development_secret_in_production():
    env = service_env(**PRODUCTION, CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    del env["SECRET_KEY"]
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "compliance",
            "worker",
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Celery refuses to start" in result.stderr
    assert "(compliance.E001) SECRET_KEY must be set to a real secret" in result.stderr


# --- make run ---------------------------------------------------------------------------------


def _runserver_env(tmp_path, *make_args, **environ):
    """The environment `make run` gives runserver, read from `make -n` in a copy of the
    Makefile whose installs are up to date."""
    make = require_program("make")
    (tmp_path / "Makefile").write_bytes((ROOT / "Makefile").read_bytes())
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").touch()
    (tmp_path / ".venv" / ".installed-run").touch()
    outer = {k: v for k, v in service_env().items() if k not in ("DEBUG", "UNSUBSCRIBE_BASE_URL")}
    result = subprocess.run(
        [make, "-n", "run", *make_args],
        cwd=tmp_path,
        env={**outer, **environ},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "manage.py runserver" in line]
    words = shlex.split(line)
    assignments = words[: next(i for i, w in enumerate(words) if "=" not in w)]
    return {**outer, **dict(w.split("=", 1) for w in assignments)}


PRINT_LINK_BASE = (
    "import django; django.setup(); from django.conf import settings;"
    "print(settings.DEBUG, settings.UNSUBSCRIBE_BASE_URL)"
)


def test_make_run_serves_in_development_mode_and_links_point_at_its_port(tmp_path):
    env = _runserver_env(tmp_path, "PORT=9000")
    result = run_python(PRINT_LINK_BASE, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "http://127.0.0.1:9000"]
    # ... and it needs no other setting: its development defaults pass every check.
    check = run_manage("check", env=env)
    assert check.returncode == 0, check.stderr.decode()


def test_make_run_keeps_a_link_base_set_in_the_environment(tmp_path):
    env = _runserver_env(tmp_path, "PORT=9000", UNSUBSCRIBE_BASE_URL="https://links.example.com")
    result = run_python(PRINT_LINK_BASE, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "https://links.example.com"]
