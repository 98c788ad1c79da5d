"""Out of the box: a default tenant, an admin account, and a `make run` that starts quickly."""

import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from django.contrib.auth import get_user_model

from compliance.models import ApiKey, Stream, Tenant
from tests.support import ROOT, run_manage, same_database_env


@pytest.mark.django_db
def test_migrate_leaves_a_default_tenant_with_its_two_streams():
    tenant = Tenant.objects.get(slug="default")
    kinds = dict(tenant.streams.values_list("slug", "kind"))
    assert kinds == {
        "transactional": Stream.Kind.TRANSACTIONAL,
        "marketing": Stream.Kind.COMMERCIAL,
    }


@pytest.mark.django_db(transaction=True)
def test_first_run_creates_an_admin_and_prints_the_password_once(client):
    first = run_manage(
        "ensure_admin", "--url", "http://127.0.0.1:8123/admin/", env=same_database_env()
    )
    assert first.returncode == 0, first.stderr
    text = first.stdout.decode()
    assert "http://127.0.0.1:8123/admin/" in text
    password = re.search(r"password:\s+(\S+)", text).group(1)
    assert client.login(username="admin", password=password)

    second = run_manage("ensure_admin", env=same_database_env())
    assert second.returncode == 0
    assert password not in second.stdout.decode()
    assert "Log in at" in second.stdout.decode()
    assert get_user_model().objects.filter(is_superuser=True).count() == 1


@pytest.mark.django_db
def test_admin_shows_a_new_api_key_once_and_stores_only_its_hash(staff_client):
    response = staff_client.post(
        "/admin/compliance/apikey/add/",
        {"name": "postfix-1", "permissions": ["suppression:read"], "tenant": ""},
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    plain = re.search(r"class='new-api-key'>(csk_[\w-]+)<", page).group(1)
    api_key = ApiKey.objects.get(name="postfix-1")
    assert api_key.created_by == staff_client.user
    assert api_key.permissions == ["suppression:read"]
    from compliance.services import authenticate_api_key

    assert authenticate_api_key(plain) == api_key
    again = staff_client.get(f"/admin/compliance/apikey/{api_key.pk}/change/")
    assert plain not in again.content.decode()


@pytest.mark.django_db
def test_admin_revokes_keys_with_an_action(staff_client, make_api_key):
    api_key, plain = make_api_key("suppression:read")
    staff_client.post(
        "/admin/compliance/apikey/", {"action": "revoke_selected", "_selected_action": [api_key.pk]}
    )
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    from compliance.services import authenticate_api_key

    assert authenticate_api_key(plain) is None


def _fake_checkout(tmp_path):
    """A copy of the Makefile and pyproject with an already-built virtualenv."""
    shutil.copy(ROOT / "Makefile", tmp_path)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    os.symlink(sys.executable, bin_dir / "python")
    return tmp_path


def _make_dry_run(directory, target):
    result = subprocess.run(["make", "-n", target], cwd=directory, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_run_reinstalls_only_when_pyproject_changes(tmp_path):
    checkout = _fake_checkout(tmp_path)
    assert "pip install" in _make_dry_run(checkout, "run")  # first run installs

    (checkout / ".venv" / ".installed-run").touch()
    second = _make_dry_run(checkout, "run")
    assert "pip install" not in second
    assert "manage.py migrate" in second and "manage.py runserver 127.0.0.1:8000" in second

    later = time.time() + 5
    os.utime(checkout / "pyproject.toml", (later, later))
    assert "pip install" in _make_dry_run(checkout, "run")


def test_make_run_host_and_port_can_be_overridden(tmp_path):
    checkout = _fake_checkout(tmp_path)
    (checkout / ".venv" / ".installed-run").touch()
    result = subprocess.run(
        ["make", "-n", "run", "HOST=0.0.0.0", "PORT=9000"],
        cwd=checkout,
        capture_output=True,
        text=True,
    )
    assert "runserver 0.0.0.0:9000" in result.stdout
    assert "http://0.0.0.0:9000/admin/" in result.stdout
