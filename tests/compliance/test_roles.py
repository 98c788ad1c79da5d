"""The staff groups: made by migration 0017, holding the permissions compliance/roles.py gives
each role, and brought up to date after every migrate, so apps added later are covered."""

import dataclasses
import importlib
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from compliance import roles
from compliance.models import AuditEvent

pytestmark = pytest.mark.django_db

PROJECT_APPS = {
    "compliance",
    "suppression",
    "consent",
    "webhooks",
    "unsubscribe",
    "fbl",
    "dsr",
    "domains",
    "preflight",
    "dashboard",
}


def held(group_name: str) -> set[str]:
    group = Group.objects.get(name=group_name)
    return {
        f"{app}.{code}"
        for app, code in group.permissions.values_list("content_type__app_label", "codename")
    }


def project_permissions() -> set[str]:
    return {
        f"{app}.{code}"
        for app, code in Permission.objects.filter(
            content_type__app_label__in=PROJECT_APPS
        ).values_list("content_type__app_label", "codename")
    }


def test_the_project_apps_are_found_from_their_packages():
    assert roles.project_app_labels() == PROJECT_APPS


def test_an_officer_holds_every_permission_of_the_project_apps_and_none_of_djangos():
    everything = project_permissions() - {
        f"compliance.{verb}_stafftenant" for verb in ("add", "change", "delete")
    }
    assert held("compliance officer") == everything
    assert "suppression.lift_protected" in everything
    assert "compliance.receive_deadline_alerts" in everything


def test_an_analyst_holds_every_view_permission_and_nothing_else():
    views = {p for p in project_permissions() if p.split(".")[1].startswith("view_")}
    assert held("compliance analyst") == views
    assert "dsr.view_datasubjectrequest" in views and "compliance.view_auditevent" in views


def test_support_views_adds_suppressions_lifts_unprotected_ones_and_opens_requests():
    views = {p for p in project_permissions() if p.split(".")[1].startswith("view_")}
    assert held("support agent") == views | {
        "suppression.add_suppression",
        "suppression.change_suppression",
        "dsr.add_datasubjectrequest",
    }


@pytest.mark.parametrize("role", ["officer", "analyst", "support"])
def test_no_role_manages_staff(role):
    assert not any(
        roles.ROLES[role].grants(app, code)
        for app, code in [
            ("compliance", "add_stafftenant"),
            ("compliance", "delete_stafftenant"),
        ]
    )


def test_support_never_lifts_protected_entries_whatever_the_table_says():
    support = roles.ROLES["support"]
    assert not support.grants("suppression", "lift_protected")
    widened = dataclasses.replace(support, everything=True)
    assert not widened.grants("suppression", "lift_protected")


def test_a_migrate_brings_the_groups_back_to_their_roles_and_records_it():
    analysts = Group.objects.get(name="compliance analyst")
    analysts.permissions.remove(Permission.objects.get(codename="view_suppression"))
    analysts.permissions.add(Permission.objects.get(codename="delete_user"))

    emit_post_migrate_signal(verbosity=0, interactive=False, db=connection.alias)

    assert "suppression.view_suppression" in held("compliance analyst")
    assert "auth.delete_user" not in held("compliance analyst")
    added = AuditEvent.objects.filter(model="auth.group", action="add").latest("id")
    removed = AuditEvent.objects.filter(model="auth.group", action="remove").latest("id")
    assert added.object_repr == removed.object_repr == "compliance analyst"
    assert [p.rsplit(" | ", 1)[1] for p in added.changes["permissions"]] == ["Can view suppression"]
    assert [p.rsplit(" | ", 1)[1] for p in removed.changes["permissions"]] == ["Can delete user"]
    assert added.actor_label == "system"


def test_a_model_added_later_to_a_project_app_is_in_the_roles_after_migrate():
    # As a new app's (or model's) permissions appear after 0017 has run.
    later = ContentType.objects.create(app_label="fbl", model="laterthing")
    view = Permission.objects.create(content_type=later, codename="view_laterthing", name="v")
    add = Permission.objects.create(content_type=later, codename="add_laterthing", name="a")

    emit_post_migrate_signal(verbosity=0, interactive=False, db=connection.alias)

    assert "fbl.view_laterthing" in held("compliance analyst")
    assert "fbl.view_laterthing" in held("support agent")
    assert {"fbl.view_laterthing", "fbl.add_laterthing"} <= held("compliance officer")
    assert add.pk not in Group.objects.get(name="support agent").permissions.values_list(
        "pk", flat=True
    )
    assert view.group_set.count() == 3


def test_the_data_migration_makes_the_groups_with_its_historical_models():
    Group.objects.filter(name__in=[r.group for r in roles.ROLES.values()]).delete()
    migration = importlib.import_module("compliance.migrations.0017_staff_roles")
    state = MigrationLoader(connection).project_state(("compliance", "0017_staff_roles"))
    # It reads only which database the schema editor works on.
    migration.create_groups(state.apps, SimpleNamespace(connection=connection))

    assert "suppression.lift_protected" in held("compliance officer")
    assert "suppression.lift_protected" not in held("support agent")
    assert "dsr.add_datasubjectrequest" in held("support agent")
    assert all(p.split(".")[1].startswith("view_") for p in held("compliance analyst"))
