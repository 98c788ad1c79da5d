"""No admin page is left unlimited: every registered ModelAdmin is limited by tenant or kept for
staff who see every tenant, and a user limited to one tenant finds none of another tenant's
rows on any list, change page, add form or page of the project's own under /admin/."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db.models import ForeignKey
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from compliance import services
from compliance.admin_scope import OperatorOnlyAdmin, TenantScopedAdmin
from compliance.models import Tenant
from tests.compliance.tenant_rows import rows_of

pytestmark = pytest.mark.django_db

# Pages under /admin/ besides the ModelAdmins' own lists and forms, each limited by tenant
# and tested (tests/compliance/test_tenant_limited_staff.py), or showing no tenant's data.
OWN_PAGES = {
    "proof",
    "proof-csv",
    "proof-pdf",
    "consent-import",
    "admin:dsr_datasubjectrequest_export",
    "admin:domains_sendingdomain_check",
    "preflight",  # checks the message it is given: reads and writes no tenant's rows
    "dashboard",  # its figures are read through staff_scope.tenant_ids_for
    "admin-models",  # the admin's model list, each link to a limited list
}
MODEL_ADMIN_VIEWS = ("changelist", "add", "history", "delete", "change")


def registry():
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def scoped():
    return [(m, a) for m, a in registry() if isinstance(a, TenantScopedAdmin)]


def test_every_admin_is_limited_by_tenant_or_kept_for_operators():
    unlimited = [
        model._meta.label
        for model, model_admin in registry()
        if not isinstance(model_admin, TenantScopedAdmin | OperatorOnlyAdmin)
    ]
    assert unlimited == [], "give these admins TenantScopedAdmin or OperatorOnlyAdmin"


def test_each_mixin_comes_before_the_model_admin_it_limits():
    for model, model_admin in registry():
        mro = type(model_admin).__mro__
        mixin = (
            TenantScopedAdmin if isinstance(model_admin, TenantScopedAdmin) else OperatorOnlyAdmin
        )
        assert mro.index(mixin) < mro.index(admin.ModelAdmin), model._meta.label


@pytest.mark.parametrize(
    ("model", "model_admin"), scoped(), ids=lambda v: getattr(v, "__name__", "")
)
def test_each_tenant_path_leads_to_the_tenant(model, model_admin):
    if model_admin.tenant_path == "pk":
        assert model is Tenant
        return
    current = model
    for hop in model_admin.tenant_path.split("__"):
        field = current._meta.get_field(hop)
        assert isinstance(field, ForeignKey), f"{model.__name__}.{hop}"
        current = field.related_model
    assert current is Tenant


def own_admin_pages() -> set[str]:
    """Names of the URLs under /admin/ that are no ModelAdmin's standard view."""
    found = set()
    standard = {
        f"{m._meta.app_label}_{m._meta.model_name}_{view}"
        for m in admin.site._registry
        for view in MODEL_ADMIN_VIEWS
    }

    def walk(patterns, namespace=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, entry.namespace or namespace)
            elif isinstance(entry, URLPattern) and entry.name:
                if entry.name not in standard:
                    found.add(f"{namespace}:{entry.name}" if namespace else entry.name)

    for top in get_resolver().url_patterns:
        if isinstance(top, URLResolver) and str(top.pattern) == "admin/":
            walk(top.url_patterns, top.namespace or "")
    django_own = {
        "admin:index",
        "admin:login",
        "admin:logout",
        "admin:password_change",
        "admin:password_change_done",
        "admin:autocomplete",
        "admin:jsi18n",
        "admin:view_on_site",
        "admin:app_list",
        "admin:auth_user_password_change",
    }
    return found - django_own


def test_every_page_of_our_own_under_admin_is_known_to_be_limited():
    assert own_admin_pages() == OWN_PAGES


@pytest.fixture
def world(make_tenant):
    """Acme and Globex with a row of every limited model each, and an officer of Acme only."""
    acme, globex = make_tenant("acme"), make_tenant("globex")
    officer, _ = services.create_staff_user(username="acme-officer", role="officer", tenants=[acme])
    return {"acme": rows_of(acme), "globex": rows_of(globex), "officer": officer}


def request_of(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_the_rows_cover_every_limited_admin(world):
    missing = [m._meta.label for m, _ in scoped() if m not in world["globex"]]
    assert missing == [], "add a row of these to tests/compliance/tenant_rows.py"


@pytest.mark.parametrize(
    ("model", "model_admin"), scoped(), ids=lambda v: getattr(v, "__name__", "")
)
def test_a_tenant_limited_user_gets_only_their_tenants_rows(world, model, model_admin):
    theirs, other = world["acme"][model], world["globex"][model]
    shown = model_admin.get_queryset(request_of(world["officer"]))
    assert shown.filter(pk=theirs.pk).exists()
    assert not shown.filter(pk=other.pk).exists()


@pytest.mark.parametrize(
    ("model", "model_admin"), scoped(), ids=lambda v: getattr(v, "__name__", "")
)
def test_every_page_of_a_limited_admin_hides_another_tenant(world, client, model, model_admin):
    client.force_login(world["officer"])
    theirs, other = world["acme"][model], world["globex"][model]

    listing = client.get(admin_url(model, "changelist"))
    assert listing.status_code == 200
    assert "globex" not in listing.content.decode().lower()

    assert client.get(admin_url(model, "change", other.pk)).status_code == 404
    assert client.get(admin_url(model, "history", other.pk)).status_code == 404
    assert client.get(admin_url(model, "delete", other.pk)).status_code in (403, 404)
    mine = client.get(admin_url(model, "change", theirs.pk))
    assert mine.status_code == 200
    assert "globex" not in mine.content.decode().lower()

    add = client.get(admin_url(model, "add"))
    assert add.status_code in (200, 403)
    assert "globex" not in add.content.decode().lower()


def test_an_officer_of_every_tenant_sees_both(world, client):
    # So that the tests above, which find no Globex row, could have found one.
    officer, _ = services.create_staff_user(username="officer", role="officer")
    client.force_login(officer)
    for model, model_admin in scoped():
        shown = model_admin.get_queryset(request_of(officer))
        for tenant in ("acme", "globex"):
            assert shown.filter(pk=world[tenant][model].pk).exists(), model._meta.label
        listing = client.get(admin_url(model, "changelist")).content.decode().lower()
        assert "globex" in listing, model._meta.label
        other = client.get(admin_url(model, "change", world["globex"][model].pk))
        assert other.status_code == 200, model._meta.label
        add = client.get(admin_url(model, "add"))
        if add.status_code == 200 and model is not Tenant:  # every other add form has a choice
            assert "globex" in add.content.decode().lower(), model._meta.label


@pytest.mark.parametrize(
    "model", [m for m, a in registry() if isinstance(a, OperatorOnlyAdmin)], ids=str
)
def test_pages_without_a_tenant_are_closed_to_tenant_limited_staff(world, client, model):
    client.force_login(world["officer"])
    assert client.get(admin_url(model, "changelist")).status_code == 403
    assert client.get(admin_url(model, "add")).status_code == 403
    assert admin_url(model, "changelist") not in client.get("/admin/").content.decode()
