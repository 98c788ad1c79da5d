"""Changes to staff users, groups and permissions, logins and failed logins are in the audit
trail, with who and from where; passwords never are."""

import pytest
from django.contrib.auth.models import Group, Permission

from compliance import audit
from compliance.models import AuditEvent

pytestmark = pytest.mark.django_db


def last(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).order_by("-id").first()


def test_a_login_through_the_admin_is_recorded_with_the_client_address(client, django_user_model):
    user = django_user_model.objects.create_user("officer", password="correct horse", is_staff=True)
    response = client.post(
        "/admin/login/",
        {"username": "officer", "password": "correct horse"},
        REMOTE_ADDR="203.0.113.7",
    )
    assert response.status_code == 302
    login = last("login")
    assert (login.actor_user_id, login.actor_label, login.remote_addr) == (
        user.pk,
        "officer",
        "203.0.113.7",
    )
    assert login.object_pk == str(user.pk)
    # The login's own last_login write is not a second, noisy "change".
    assert not AuditEvent.objects.filter(action="update", model="auth.user").exists()


def test_a_failed_login_keeps_the_name_tried_and_never_the_password(client, django_user_model):
    django_user_model.objects.create_user("officer", password="correct horse", is_staff=True)
    client.post(
        "/admin/login/",
        {"username": "officer", "password": "battery staple"},
        REMOTE_ADDR="198.51.100.9",
    )
    failed = last("login_failed")
    assert failed.changes == {"username": "officer"}
    assert failed.remote_addr == "198.51.100.9"
    assert failed.actor_label == "anonymous"
    assert "battery" not in str(failed.changes) + failed.object_repr
    assert last("login") is None


def test_adding_a_user_to_a_group_is_recorded_from_either_side(django_user_model):
    user = django_user_model.objects.create_user("analyst")
    officers = Group.objects.create(name="officers")
    with audit.acting_as(
        audit.Actor(label="boss", via="admin", user_id=1, remote_addr="192.0.2.1")
    ):
        user.groups.add(officers)
    added = last("add")
    assert (added.model, added.object_pk, added.changes) == (
        "auth.user",
        str(user.pk),
        {"groups": ["officers"]},
    )
    assert (added.actor_label, added.remote_addr) == ("boss", "192.0.2.1")

    other = django_user_model.objects.create_user("support")
    officers.user_set.add(other)
    added = last("add")
    assert (added.model, added.object_pk, added.changes) == (
        "auth.group",
        str(officers.pk),
        {"users": ["support"]},
    )

    user.groups.clear()
    removed = last("remove")
    assert removed.changes == {"groups": ["officers"]}


def test_giving_and_taking_a_permission_is_recorded(django_user_model):
    user = django_user_model.objects.create_user("analyst")
    lift = Permission.objects.get(codename="lift_protected")
    user.user_permissions.add(lift)
    given = last("add")
    assert given.object_pk == str(user.pk)
    assert given.changes == {"user_permissions": [str(lift)]}

    group = Group.objects.create(name="officers")
    group.permissions.add(lift)
    assert last("add").changes == {"permissions": [str(lift)]}
    group.permissions.remove(lift)
    assert last("remove").changes == {"permissions": [str(lift)]}


def test_staff_user_changes_are_recorded_and_a_new_password_only_as_changed(django_user_model):
    user = django_user_model.objects.create_user("analyst", password="first secret")
    created = AuditEvent.objects.get(action="create", model="auth.user", object_pk=str(user.pk))
    assert created.changes["password"] == [None, "[redacted]"]
    user.is_staff = True
    user.set_password("second secret")
    user.save()
    change = last("update")
    assert change.changes["is_staff"] == [False, True]
    assert change.changes["password"] == ["[redacted]", "[changed]"]
    assert "secret" not in str(change.changes)
    assert user.password not in str(AuditEvent.objects.values_list("changes", flat=True))


def test_group_changes_are_recorded():
    group = Group.objects.create(name="officers")
    group.name = "compliance officers"
    group.save()
    assert last("update").changes == {"name": ["officers", "compliance officers"]}


def test_record_access_names_the_actor_and_keeps_only_the_hash():
    digest = bytes(range(32))
    with audit.acting_as(
        audit.Actor(label="staff", via="admin", user_id=7, remote_addr="192.0.2.5")
    ):
        audit.record_access(audit.ACCESS_EXPORT, digest)
    seen = last("access")
    assert (seen.model, seen.object_pk) == ("personal_data", digest.hex())
    assert seen.changes == {"what": "access_export", "tenant": None}
    assert (seen.actor_user_id, seen.remote_addr) == (7, "192.0.2.5")
