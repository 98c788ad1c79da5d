"""`manage.py create_staff_user NAME --role officer|analyst|support [--tenant SLUG ...]
[--email E]`: an active staff user in the role's group, limited to the tenants, whose generated
password is the last line printed; exit 2 with the reason for bad input."""

import pytest
from django.contrib.auth import get_user_model

from compliance.models import AuditEvent, StaffTenant
from tests.support import run_manage, same_database_env

pytestmark = pytest.mark.django_db(transaction=True)  # the command runs in its own process


def test_the_command_makes_a_limited_analyst_whose_password_logs_in(make_tenant, client):
    make_tenant("acme"), make_tenant("globex"), make_tenant("initech")
    result = run_manage(
        "create_staff_user",
        "ana",
        "--role",
        "analyst",
        "--tenant",
        "acme",
        "globex",
        "--tenant",
        "acme",
        "--email",
        "ana@example.com",
        env=same_database_env(),
    )
    assert result.returncode == 0, result.stderr.decode()
    *said, password = result.stdout.decode().strip().splitlines()
    assert said == [
        "Created staff user 'ana' (compliance analyst; limited to acme, globex). "
        "The password is shown only now:"
    ]
    user = get_user_model().objects.get(username="ana")
    assert (user.is_staff, user.is_active, user.is_superuser, user.email) == (
        True,
        True,
        False,
        "ana@example.com",
    )
    assert [g.name for g in user.groups.all()] == ["compliance analyst"]
    assert sorted(StaffTenant.objects.filter(user=user).values_list("tenant__slug", flat=True)) == [
        "acme",
        "globex",
    ]

    answer = client.post("/admin/login/?next=/admin/", {"username": "ana", "password": password})
    assert answer.status_code == 302 and answer["Location"] == "/admin/"
    assert client.get("/admin/suppression/suppression/").status_code == 200

    by_command = AuditEvent.objects.filter(actor_label="command:create_staff_user")
    assert by_command.filter(action="create", model="auth.user", object_repr="ana").exists()
    assert by_command.get(action="add", model="auth.user").changes == {
        "groups": ["compliance analyst"]
    }
    assert sorted(
        by_command.filter(model="compliance.stafftenant").values_list("object_repr", flat=True)
    ) == ["ana limited to acme", "ana limited to globex"]
    assert password not in str(list(AuditEvent.objects.values_list("changes", flat=True)))


def test_without_a_tenant_the_user_sees_every_tenant(make_tenant):
    make_tenant("acme")
    result = run_manage("create_staff_user", "olga", "--role", "officer", env=same_database_env())
    assert result.returncode == 0, result.stderr.decode()
    assert "(compliance officer; every tenant)" in result.stdout.decode()
    user = get_user_model().objects.get(username="olga")
    assert not StaffTenant.objects.filter(user=user).exists()
    assert user.has_perm("suppression.lift_protected")


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["new", "--role", "admin"], "unknown role 'admin'; use one of officer, analyst, support"),
        (
            ["new", "--role", "support", "--tenant", "nosuch"],
            "unknown tenant 'nosuch'; known: acme",
        ),
        (["Taken", "--role", "support"], "a user named 'Taken' already exists"),
        (["new", "--role", "support", "--email", "nope"], "'nope' is not an e-mail address"),
        (["no name", "--role", "support"], "user name 'no name': Enter a valid username"),
    ],
)
def test_bad_input_exits_2_with_the_reason_and_makes_nobody(make_tenant, args, reason):
    make_tenant("acme")
    get_user_model().objects.create_user("taken")
    result = run_manage("create_staff_user", *args, env=same_database_env())
    assert result.returncode == 2
    assert reason in result.stderr.decode()
    assert list(get_user_model().objects.values_list("username", flat=True)) == ["taken"]
