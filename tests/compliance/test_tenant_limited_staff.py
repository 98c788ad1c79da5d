"""Staff limited to a tenant in the admin: shared "never mail" entries are shown to them as a
tenant's key sees them (blocked, without address, evidence or history) and only staff who see
every tenant change them; the operator's own rows (no tenant) are not shown; forms offer only
their tenants; the proof page, imports and alert mail keep to the same limits."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile

from compliance import services
from compliance.dsr import services as dsr
from compliance.models import ApiKey, AuditEvent, StaffTenant
from fbl import selectors as fbl_selectors
from suppression.models import ImportJob, Suppression

pytestmark = pytest.mark.django_db

LIST = "/admin/suppression/suppression/"


@pytest.fixture
def acme(make_tenant):
    return make_tenant("acme")


@pytest.fixture
def globex(make_tenant):
    return make_tenant("globex")


@pytest.fixture
def login(client, acme, globex):
    """Log in as a new staff user of `role`, limited to Acme unless `tenants` says otherwise."""

    def as_(role: str = "officer", tenants=None):
        user, _ = services.create_staff_user(
            username=f"{role}-{len(StaffTenant.objects.all())}",
            role=role,
            tenants=[acme] if tenants is None else tenants,
            email=f"{role}@acme.example",
        )
        client.force_login(user)
        client.user = user
        return client

    return as_


@pytest.fixture
def shared(suppress):
    return suppress(
        "shared-bounce@example.com", "hard_bounce", tenant=None, evidence_note="DSN from mx1"
    )


def test_shared_entries_are_listed_as_blocked_without_their_address(
    login, suppress, acme, globex, shared
):
    suppress("own@example.com", "unsubscribe", tenant=acme)
    suppress("theirs@example.com", "unsubscribe", tenant=globex)
    page = login("analyst").get(LIST).content.decode()
    assert "own@example.com" in page
    assert "[shared by every tenant]" in page and "Hard bounce" in page
    assert "shared-bounce" not in page and "theirs@example.com" not in page


def test_a_shared_entrys_page_shows_neither_evidence_nor_history(login, shared):
    page = login("analyst").get(f"{LIST}{shared.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "[shared by every tenant]" in text and bytes(shared.address_hash).hex() in text
    assert "shared-bounce" not in text and "DSN from mx1" not in text
    assert "suppressionevent" not in text  # the history inline


def test_staff_of_every_tenant_see_the_shared_entry_whole(login, shared):
    text = login("officer", tenants=[]).get(f"{LIST}{shared.pk}/change/").content.decode()
    assert "shared-bounce@example.com" in text and "DSN from mx1" in text


def test_a_limited_officer_cannot_lift_a_shared_entry(login, suppress, acme, shared):
    own = suppress("own@example.com", "hard_bounce", tenant=acme)
    answer = login("officer").post(
        LIST,
        {
            "action": "lift_selected",
            "_selected_action": [shared.pk, own.pk],
            "confirm": "yes",
            "note": "mailbox exists again",
        },
        follow=True,
    )
    assert "only staff who see every tenant change them" in answer.content.decode()
    shared.refresh_from_db()
    own.refresh_from_db()
    assert shared.is_active and not own.is_active


def test_searching_part_of_an_address_finds_no_shared_entry(login, suppress, acme, shared):
    suppress("shared-own@example.com", "unsubscribe", tenant=acme)
    client = login("analyst")
    page = client.get(LIST, {"q": "shared-"}).content.decode()
    assert "shared-own@example.com" in page and "[shared by every tenant]" not in page
    # The whole address is the recipient's the tenant already has: it shows as blocked.
    page = client.get(LIST, {"q": "Shared-Bounce@example.com"}).content.decode()
    assert "[shared by every tenant]" in page


def test_the_operators_own_rows_are_not_shown(login, make_api_key, client):
    unbound, _ = make_api_key("suppression:read", name="operator-relay")
    everyone = dsr.open_request(address="pat@example.com", kind="access", tenant=None)
    login("officer")
    assert "operator-relay" not in client.get("/admin/compliance/apikey/").content.decode()
    assert client.get(f"/admin/compliance/apikey/{unbound.pk}/change/").status_code == 404
    listing = client.get("/admin/dsr/datasubjectrequest/").content.decode()
    assert f"#{everyone.pk}" not in listing
    assert client.get(f"/admin/dsr/datasubjectrequest/{everyone.pk}/change/").status_code == 404


@pytest.mark.parametrize("tenant", ["globex", ""])
def test_a_limited_user_adds_suppressions_for_their_tenants_only(login, acme, globex, tenant):
    chosen = {"globex": globex.pk, "": ""}[tenant]
    page = login("support").post(
        f"{LIST}add/",
        {"address": "x@example.com", "tenant": chosen, "reason": "manual", "note": "asked"},
    )
    assert page.status_code == 200
    assert "Select a valid choice" in page.content.decode() or "required" in page.content.decode()
    assert not Suppression.objects.exists()
    login("support").post(
        f"{LIST}add/",
        {"address": "x@example.com", "tenant": acme.pk, "reason": "manual", "note": "asked"},
    )
    assert Suppression.objects.get().tenant == acme


def test_a_limited_officer_issues_keys_of_their_tenant_and_never_operator_level(
    login, acme, globex
):
    client = login("officer")
    form = client.get("/admin/compliance/apikey/add/").content.decode()
    assert "operator_level" not in form and "Globex" not in form
    refused = client.post(
        "/admin/compliance/apikey/add/",
        {"name": "sneaky", "permissions": ["suppression:read"], "tenant": globex.pk},
    )
    assert "Select a valid choice" in refused.content.decode()
    client.post(
        "/admin/compliance/apikey/add/",
        {
            "name": "acme-relay",
            "permissions": ["suppression:read"],
            "tenant": acme.pk,
            "operator_level": "on",
        },
    )
    key = ApiKey.objects.get()
    assert (key.name, key.tenant, key.operator_level) == ("acme-relay", acme, False)


def test_a_limited_user_opens_requests_for_their_tenants_only(login, acme, globex):
    client = login("support")
    refused = client.post(
        "/admin/dsr/datasubjectrequest/add/",
        {"address": "pat@example.com", "kind": "access", "tenant": globex.pk},
    )
    assert "Select a valid choice" in refused.content.decode()
    client.post(
        "/admin/dsr/datasubjectrequest/add/",
        {"address": "pat@example.com", "kind": "access", "tenant": acme.pk},
    )
    from compliance.dsr.models import DataSubjectRequest

    assert DataSubjectRequest.objects.get().tenant == acme


def test_the_proof_page_answers_for_the_users_tenants_only(login, suppress, acme, globex):
    suppress("pat@example.com", "unsubscribe", tenant=globex)
    suppress("pat@example.com", "complaint", tenant=acme)
    client = login("analyst")
    form = client.get("/admin/proof/").content.decode()
    assert "acme" in form and "globex" not in form and "every tenant" not in form

    refused = client.get("/admin/proof/", {"address": "pat@example.com", "tenant": "globex"})
    assert "Select a valid choice" in refused.content.decode()
    assert not AuditEvent.objects.filter(action="access").exists()
    csv = client.get("/admin/proof/csv", {"address": "pat@example.com", "tenant": "globex"})
    assert csv.status_code == 400

    page = client.get("/admin/proof/", {"address": "pat@example.com", "tenant": "acme"})
    text = page.content.decode()
    assert "complaint" in text and "globex" not in text
    assert AuditEvent.objects.get(action="access").changes["tenant"] == "acme"


def test_the_consent_import_takes_the_users_tenants_only(login, globex):
    client = login("officer")
    assert "globex" not in client.get("/admin/consent/import/").content.decode().lower()
    upload = SimpleUploadedFile("c.csv", b"address,purpose\n")
    refused = client.post("/admin/consent/import/", {"file": upload, "tenant": globex.pk})
    assert "Select a valid choice" in refused.content.decode()


def test_the_suppression_import_takes_the_users_tenants_only(login, globex):
    upload = SimpleUploadedFile("list.csv", b"email,reason\nx@example.com,manual\n")
    refused = login("officer").post(
        "/admin/suppression/importjob/add/", {"file": upload, "format": "", "tenant": ""}
    )
    assert "This field is required" in refused.content.decode()
    assert not ImportJob.objects.exists()


def test_an_access_export_of_another_tenant_is_not_found(login, globex):
    other = dsr.open_request(address="pat@example.com", kind="access", tenant=globex)
    answer = login("officer").get(f"/admin/dsr/datasubjectrequest/{other.pk}/export.zip")
    assert answer.status_code == 404


def test_mail_listing_every_tenant_goes_to_staff_who_see_every_tenant(
    acme, django_user_model, settings
):
    settings.STAFF_ALERT_EMAILS = []
    settings.COMPLAINT_RATE_RECIPIENTS = []
    services.create_staff_user(username="all", role="officer", email="all@example.com")
    services.create_staff_user(
        username="acme", role="officer", tenants=[acme], email="acme@example.com"
    )
    from compliance import alerts

    assert alerts.recipients() == ["all@example.com"]
    assert fbl_selectors.rate_alert_recipients() == ["all@example.com"]
    assert mail.outbox == []


def test_a_superuser_limits_staff_on_the_users_page_and_it_is_recorded(
    staff_client, acme, django_user_model
):
    user, _ = services.create_staff_user(username="ana", role="analyst")
    page = staff_client.get(f"/admin/auth/user/{user.pk}/change/").content.decode()
    assert "Tenants this user is limited to" in page
    form = {
        "username": "ana",
        "is_active": "on",
        "is_staff": "on",
        "groups": [g.pk for g in user.groups.all()],
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "staff_tenants-TOTAL_FORMS": "1",
        "staff_tenants-INITIAL_FORMS": "0",
        "staff_tenants-0-tenant": acme.pk,
    }
    answer = staff_client.post(f"/admin/auth/user/{user.pk}/change/", form)
    assert answer.status_code == 302, answer.content.decode()[:2000]
    assert list(user.staff_tenants.values_list("tenant__slug", flat=True)) == ["acme"]
    limited = AuditEvent.objects.filter(model="compliance.stafftenant", action="create").get()
    assert limited.actor_label == "staff" and limited.object_repr == "ana limited to acme"


def test_permissions_alone_do_not_open_the_users_page_to_limited_staff(login, client):
    login("officer")
    client.user.user_permissions.add(*Permission.objects.filter(content_type__app_label="auth"))
    assert client.get("/admin/auth/user/").status_code == 403
    assert client.get("/admin/auth/group/").status_code == 403


def test_a_request_is_handed_only_to_colleagues_of_the_same_tenants(login, client, acme, globex):
    services.create_staff_user(username="acme-colleague", role="support", tenants=[acme])
    services.create_staff_user(username="globex-agent", role="support", tenants=[globex])
    services.create_staff_user(username="head-office", role="officer")
    row = dsr.open_request(address="pat@example.com", kind="access", tenant=acme)
    login("officer")
    form = client.get(f"/admin/dsr/datasubjectrequest/{row.pk}/change/").content.decode()
    assert client.user.username in form and "acme-colleague" in form
    assert "globex-agent" not in form and "head-office" not in form


def test_another_tenants_domain_cannot_be_checked(login, globex):
    from compliance.domains.models import SendingDomain

    other = SendingDomain.objects.create(domain="globex.example", tenant=globex)
    answer = login("officer").post(f"/admin/domains/sendingdomain/{other.pk}/check/")
    assert answer.status_code == 404
    assert not other.checks.exists()


def test_the_pre_send_check_page_is_open_to_limited_staff(login):
    assert login("analyst").get("/admin/preflight/").status_code == 200
