import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from compliance import services
from compliance.models import ApiKey
from tests.support import run_manage, same_database_env

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.compliance.scoped_urls")]


def bearer(plain: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def test_no_key_is_401_with_a_bearer_challenge():
    response = APIClient().get("/probe")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["detail"]


def test_unknown_key_is_401():
    assert bearer("csk_not-a-real-key").get("/probe").status_code == 401


def test_malformed_authorization_header_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic dXNlcjpwdw==")
    response = client.get("/probe")
    assert response.status_code == 401
    assert "Bearer" in response.json()["detail"]


def test_revoked_key_is_401(make_api_key):
    api_key, plain = make_api_key("suppression:read")
    assert bearer(plain).get("/probe").status_code == 200
    services.revoke_api_key(api_key=api_key)
    assert bearer(plain).get("/probe").status_code == 401


def test_key_without_the_scope_is_403(make_api_key):
    _, plain = make_api_key("suppression:read")
    client = bearer(plain)
    assert client.get("/probe").status_code == 200
    response = client.post("/probe", {}, format="json")
    assert response.status_code == 403
    assert "suppression:write" in response.json()["detail"]


def test_view_that_declares_no_permission_refuses_every_key(make_api_key):
    _, plain = make_api_key(*["suppression:read", "suppression:write"])
    assert bearer(plain).get("/undeclared").status_code == 403


def test_only_a_hash_of_the_key_is_stored(make_api_key):
    api_key, plain = make_api_key("suppression:read")
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert plain not in (stored.key_hash, stored.prefix, str(stored.permissions))
    assert plain.startswith(stored.prefix)
    assert stored.key_hash == services.hash_api_key(plain)


def test_last_used_time_is_recorded(make_api_key):
    api_key, plain = make_api_key("suppression:read")
    assert api_key.last_used_at is None
    before = timezone.now()
    bearer(plain).get("/probe")
    api_key.refresh_from_db()
    assert api_key.last_used_at >= before


def test_unknown_permission_is_refused_by_the_service():
    with pytest.raises(services.ServiceError, match="unknown permission"):
        services.issue_api_key(name="x", permissions=["suppression:read", "everything"])
    assert not ApiKey.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_create_api_key_command_prints_a_working_key_last(default_tenant):
    result = run_manage(
        "create_api_key",
        "kumomta-east",
        "--permissions",
        "suppression:read,reports:write",
        "--tenant",
        "default",
        env=same_database_env(),
    )
    assert result.returncode == 0, result.stderr
    plain = result.stdout.decode().strip().splitlines()[-1]
    api_key = ApiKey.objects.get(name="kumomta-east")
    assert api_key.tenant == default_tenant
    assert api_key.permissions == ["reports:write", "suppression:read"]
    assert api_key.operator_level is False
    assert bearer(plain).get("/probe").json() == {"key": "kumomta-east"}


@pytest.mark.django_db(transaction=True)
def test_create_api_key_marks_an_operator_level_relay(default_tenant):
    result = run_manage(
        "create_api_key",
        "kumomta-own",
        "--scopes",
        "reports:write",
        "--tenant",
        "default",
        "--operator-level",
        env=same_database_env(),
    )
    assert result.returncode == 0, result.stderr
    assert ApiKey.objects.get(name="kumomta-own").operator_level is True


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scopes", "suppression:read,root"], "unknown permission(s): root"),
        (["--scopes", "suppression:read", "--tenant", "nosuch"], "unknown tenant 'nosuch'"),
    ],
)
def test_create_api_key_refuses_bad_input_with_status_2(args, message):
    result = run_manage("create_api_key", "bad", *args, env=same_database_env())
    assert result.returncode == 2
    assert message in result.stderr.decode()
    assert not ApiKey.objects.exists()
