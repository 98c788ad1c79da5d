"""Who sees which tenants: staff with tenant rows see those; staff without, and superusers, see
every tenant; someone not logged in sees none."""

import pytest
from django.contrib.auth.models import AnonymousUser

from compliance import services, staff_scope

pytestmark = pytest.mark.django_db


def test_staff_with_tenants_see_those_and_no_other(make_tenant):
    acme, globex = make_tenant("acme"), make_tenant("globex")
    make_tenant("initech")
    user, _ = services.create_staff_user(username="ana", role="analyst", tenants=[acme, globex])
    assert staff_scope.tenant_ids_for(user) == frozenset({acme.pk, globex.pk})
    assert list(staff_scope.tenants_for(user).order_by("slug")) == [acme, globex]
    assert staff_scope.sees(user, acme.pk) and not staff_scope.sees(user, None)


def test_staff_without_tenants_see_every_tenant(make_tenant):
    make_tenant("acme")
    user, _ = services.create_staff_user(username="ana", role="analyst")
    assert staff_scope.tenant_ids_for(user) is None
    assert staff_scope.sees(user, None)


def test_a_superuser_sees_every_tenant_even_with_tenant_rows(make_tenant, django_user_model):
    acme = make_tenant("acme")
    root = django_user_model.objects.create_superuser("root", "", "pw")
    root.staff_tenants.create(tenant=acme)
    assert staff_scope.tenant_ids_for(root) is None


def test_nobody_logged_in_and_inactive_users_see_no_tenant(make_tenant):
    make_tenant("acme")
    user, _ = services.create_staff_user(username="gone", role="officer")
    user.is_active = False
    assert staff_scope.tenant_ids_for(AnonymousUser()) == frozenset()
    assert staff_scope.tenant_ids_for(user) == frozenset()
