"""Configuration comes from the environment, and production refuses unsafe defaults."""

import pytest

from tests.support import run_manage, service_env

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
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert variable in stderr
    assert "Traceback" not in stderr


def test_production_refuses_a_short_secret_key():
    result = run_manage("check", env=service_env(**{**PRODUCTION, "SECRET_KEY": "short"}))
    assert result.returncode == 2
    assert "SECRET_KEY must be at least 50 characters" in result.stderr.decode()


@pytest.mark.parametrize(
    "url", ["not a url", "mysql://root@localhost/db", "postgres://postgres@127.0.0.1:5432/"]
)
def test_malformed_database_url_stops_with_the_variable_named(url):
    result = run_manage("check", env=service_env(DATABASE_URL=url))
    assert result.returncode == 2
    assert "DATABASE_URL is malformed" in result.stderr.decode()


def test_unknown_log_format_is_refused():
    result = run_manage("check", env=service_env(LOG_FORMAT="xml"))
    assert result.returncode == 2
    assert "LOG_FORMAT" in result.stderr.decode()


def test_embedded_default_needs_no_other_service():
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, s.EMAIL_BACKEND)"
    )
    from tests.support import run_python

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
    assert result.returncode == 2
    assert "UNSUBSCRIBE_BASE_URL must be an https:// URL" in result.stderr.decode()
