"""The roles through the admin, as each kind of staff meets them: a compliance officer does
everything, an analyst reads, a support agent adds suppressions, lifts those not protected and
opens data-subject requests, and an analyst limited to one tenant reads only that tenant."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin

from compliance import services
from compliance.dsr import services as dsr
from compliance.dsr.models import DataSubjectRequest
from suppression.models import Suppression

pytestmark = pytest.mark.django_db

SUPPRESSIONS = "/admin/suppression/suppression/"
REQUESTS = "/admin/dsr/datasubjectrequest/"
LISTS = [
    SUPPRESSIONS,
    REQUESTS,
    "/admin/compliance/optoutrequest/",
    "/admin/compliance/tenant/",
    "/admin/compliance/apikey/",
    "/admin/consent/consentrecord/",
    "/admin/fbl/inboundmessage/",
    "/admin/fbl/dailycount/",
    "/admin/webhooks/downstreamendpoint/",
]
# What each role may do, per thing tried below.
MATRIX = """
thing                     officer  analyst  support  acme analyst
open every list           yes      yes      yes      yes
read the audit trail      yes      yes      yes      no
edit a request            yes      no       no       no
add a suppression         yes      no       yes      no
lift an unsubscribe       yes      no       yes      no
lift a complaint          yes      no       no       no
open a request            yes      no       yes      no
add a tenant              yes      no       no       no
see another tenant's row  yes      yes      yes      no
"""
HEADER, *LINES = [re.split(r"\s{2,}", line) for line in MATRIX.strip().splitlines()]
ROLES = HEADER[1:]
EXPECTED = {
    (thing, role): answer == "yes"
    for thing, *answers in LINES
    for role, answer in zip(ROLES, answers, strict=True)
}


@pytest.fixture
def world(make_tenant, suppress):
    acme, globex = make_tenant("acme"), make_tenant("globex")
    return {
        "acme": acme,
        "globex": globex,
        "unsubscribe": suppress("unsub@example.com", "unsubscribe", tenant=acme),
        "complaint": suppress("complaint@example.com", "complaint", tenant=acme),
        "globex row": suppress("globex-row@example.com", "unsubscribe", tenant=globex),
        "request": dsr.open_request(address="pat@example.com", kind="access", tenant=acme),
    }


@pytest.fixture
def as_role(client, world):
    def login(role: str):
        name = role.replace(" ", "-")
        tenants = [world["acme"]] if role.startswith("acme") else []
        user, _ = services.create_staff_user(
            username=name, role=name.split("-")[-1], tenants=tenants
        )
        client.force_login(user)
        return client

    return login


def lift(client, row) -> bool:
    client.post(
        SUPPRESSIONS,
        {
            "action": "lift_selected",
            "_selected_action": [row.pk],
            "confirm": "yes",
            "note": "the recipient asked to be mailed again",
        },
    )
    row.refresh_from_db()
    return not row.is_active


def open_every_list(client, world) -> bool:
    codes = {url: client.get(url).status_code for url in LISTS}
    assert set(codes.values()) == {200}, codes
    return True


def read_the_audit_trail(client, world) -> bool:
    return client.get("/admin/compliance/auditevent/").status_code == 200


def edit_a_request(client, world) -> bool:
    page = client.get(f"{REQUESTS}{world['request'].pk}/change/")
    assert page.status_code == 200
    return 'name="_save"' in page.content.decode()


def add_a_suppression(client, world) -> bool:
    client.post(
        f"{SUPPRESSIONS}add/",
        {
            "address": "new@example.com",
            "tenant": world["acme"].pk,
            "reason": "manual",
            "note": "asked by phone",
        },
    )
    return Suppression.objects.filter(address="new@example.com").exists()


def lift_an_unsubscribe(client, world) -> bool:
    return lift(client, world["unsubscribe"])


def lift_a_complaint(client, world) -> bool:
    return lift(client, world["complaint"])


def open_a_request(client, world) -> bool:
    client.post(
        f"{REQUESTS}add/",
        {"address": "new@example.com", "kind": "erasure", "tenant": world["acme"].pk},
    )
    return DataSubjectRequest.objects.filter(address="new@example.com").exists()


def add_a_tenant(client, world) -> bool:
    return client.get("/admin/compliance/tenant/add/").status_code == 200


def see_another_tenants_row(client, world) -> bool:
    row = world["globex row"]
    listed = "globex-row@example.com" in client.get(SUPPRESSIONS).content.decode()
    page = client.get(f"{SUPPRESSIONS}{row.pk}/change/").status_code
    assert listed == (page == 200)
    return listed


TRIES = {
    "open every list": open_every_list,
    "read the audit trail": read_the_audit_trail,
    "edit a request": edit_a_request,
    "add a suppression": add_a_suppression,
    "lift an unsubscribe": lift_an_unsubscribe,
    "lift a complaint": lift_a_complaint,
    "open a request": open_a_request,
    "add a tenant": add_a_tenant,
    "see another tenant's row": see_another_tenants_row,
}


def test_the_matrix_names_every_thing_tried():
    assert [thing for thing, *_ in LINES] == list(TRIES)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("thing", list(TRIES))
def test_the_permission_matrix(as_role, world, role, thing):
    assert TRIES[thing](as_role(role), world) is EXPECTED[thing, role]


def test_support_is_told_why_a_complaint_stays(as_role, world):
    answer = as_role("support").post(
        SUPPRESSIONS,
        {
            "action": "lift_selected",
            "_selected_action": [world["complaint"].pk],
            "confirm": "yes",
            "note": "asked",
        },
        follow=True,
    )
    assert "needs the &#x27;lift protected entries&#x27; permission" in answer.content.decode()


def test_a_read_only_role_is_offered_no_action_anywhere(as_role, world, rf):
    from django.contrib.auth import get_user_model

    as_role("analyst")
    request = rf.get("/admin/")
    request.user = get_user_model().objects.get(username="analyst")
    offered = {
        model._meta.label: list(model_admin.get_actions(request))
        for model, model_admin in admin.site._registry.items()
    }
    assert {label: names for label, names in offered.items() if names} == {}


def test_support_is_offered_only_the_lift(as_role, world, rf):
    from django.contrib.auth import get_user_model

    as_role("support")
    request = rf.get("/admin/")
    request.user = get_user_model().objects.get(username="support")
    offered = {
        model._meta.label: list(model_admin.get_actions(request))
        for model, model_admin in admin.site._registry.items()
    }
    assert {label: names for label, names in offered.items() if names} == {
        "suppression.Suppression": ["lift_selected"]
    }
