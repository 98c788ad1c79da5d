"""deploy/compliance.env.example cannot drift from the service, the units or docs/deploy.md.

Every variable it lists is read by something (the settings, the gunicorn configuration or a
unit's command line); every variable the units, the gunicorn configuration and the deployment
doc name is in it; and as shipped it is a production configuration that only lacks its secrets.
"""

from __future__ import annotations

import re

from tests.deploy.shipped import (
    DEPLOY_DOC,
    ENV_EXAMPLE,
    GUNICORN_CONF,
    UNITS,
    env_file,
    generated_secrets,
    optional_names,
)
from tests.support import ROOT, run_manage

SETTINGS = ROOT / "compliance" / "settings.py"
# Set by systemd itself (RuntimeDirectory=), not by the operator.
SET_BY_SYSTEMD = {"RUNTIME_DIRECTORY"}


def _example_names() -> set[str]:
    return set(env_file(ENV_EXAMPLE)) | optional_names(ENV_EXAMPLE)


def _read_by_settings() -> set[str]:
    source = SETTINGS.read_text()
    return set(re.findall(r"\benv\.\w+\(\s*\"([A-Z][A-Z0-9_]*)\"", source))


def _read_by_gunicorn_conf() -> set[str]:
    source = GUNICORN_CONF.read_text()
    names = re.findall(
        r"(?:environ\.get|environ\[|_whole_number)\(?\s*\"([A-Z][A-Z0-9_]*)\"", source
    )
    return set(names) - SET_BY_SYSTEMD


def _read_by_units() -> set[str]:
    names = set()
    for path in UNITS.iterdir():
        text = path.read_text()
        names |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))
        names |= set(re.findall(r"^Environment=([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))
    return names - {"MAINPID"}  # systemd's own, in ExecReload=


def _named_in_doc() -> set[str]:
    """Every `NAME` the deployment doc shows in backticks on its own."""
    return set(re.findall(r"`([A-Z][A-Z0-9_]*)`", DEPLOY_DOC.read_text()))


def test_every_variable_in_the_example_is_read_by_the_service():
    read = _read_by_settings() | _read_by_gunicorn_conf() | _read_by_units()
    assert _example_names() - read == set()


def test_the_example_lists_every_variable_the_units_and_gunicorn_read():
    assert _read_by_units() | _read_by_gunicorn_conf() <= _example_names()


def test_the_example_lists_every_variable_the_deployment_doc_names():
    assert _named_in_doc() - _example_names() == set()


def test_the_settings_the_start_up_checks_require_are_in_the_example_with_no_default():
    required = {"SECRET_KEY", "ADDRESS_HASH_KEY", "UNSUBSCRIBE_TOKEN_KEYS"}
    shipped = env_file(ENV_EXAMPLE)
    for name in required | {"UNSUBSCRIBE_BASE_URL", "ALLOWED_HOSTS", "DATABASE_URL"}:
        assert name in shipped, f"{name} must be set, not left commented out"
    assert shipped["DEBUG"] == "false"
    assert shipped["UNSUBSCRIBE_BASE_URL"].startswith("https://")
    # No usable secret ships: an unedited copy must not start.
    assert all(shipped[name] in ("", "1:") for name in required)


def _example_env(**overrides: str) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", **env_file(ENV_EXAMPLE)}
    env.update(overrides)
    return env


def test_an_unedited_copy_refuses_to_start_naming_the_missing_secret():
    result = run_manage("check", env=_example_env())
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr.decode()


def test_the_example_with_its_secrets_filled_in_passes_the_deploy_checklist():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", env=_example_env(**generated_secrets())
    )
    assert result.returncode == 0, result.stderr.decode()
    assert "no issues" in result.stdout.decode()


def test_only_the_secrets_are_missing_from_the_example():
    """With SECRET_KEY given and the other two secrets still empty, the checks list exactly
    those two: every other value in the example is one production accepts."""
    filled = generated_secrets()
    result = run_manage("check", env=_example_env(SECRET_KEY=filled["SECRET_KEY"]))
    stderr = result.stderr.decode()
    assert result.returncode != 0
    errors = re.findall(r"\((\w+\.E\d+)\)", stderr)
    assert sorted(errors) == ["compliance.E002", "compliance.E003"], stderr
