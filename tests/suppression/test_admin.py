"""The staff pages: search by address, history, lift with a reason, add, import with progress."""

import re

import pytest
from django.contrib.auth.models import Permission

from suppression.models import ImportJob, Suppression

pytestmark = pytest.mark.django_db

LIST = "/admin/suppression/suppression/"


def test_search_finds_an_address_in_any_form_by_its_hash(staff_client, suppress):
    suppress("jo@bücher.example", "unsubscribe")
    suppress("other@example.com", "unsubscribe")
    page = staff_client.get(LIST, {"q": "  JO@BÜCHER.example "}).content.decode()
    assert "jo@xn--bcher-kva.example" in page  # stored in its normalised (IDNA) form
    assert "other@example.com" not in page


def test_filters_narrow_the_list(staff_client, suppress):
    suppress("bounce@example.com", "hard_bounce")
    suppress("unsub@example.com", "unsubscribe")
    page = staff_client.get(LIST, {"reason": "hard_bounce"}).content.decode()
    assert "bounce@example.com" in page and "unsub@example.com" not in page
    page = staff_client.get(LIST, {"scope": "global", "state": "active"}).content.decode()
    assert "bounce@example.com" in page and "unsub@example.com" not in page


def test_an_entry_shows_its_history(staff_client, suppress):
    row = suppress("h@example.com", "unsubscribe")
    suppress("h@example.com", "complaint")
    page = staff_client.get(f"{LIST}{row.pk}/change/").content.decode()
    assert "Added" in page and "New reason" in page
    assert bytes(row.address_hash).hex() in page


def test_lift_action_asks_for_a_reason_then_lifts(staff_client, suppress):
    row = suppress("l@example.com", "manual")
    ask = staff_client.post(LIST, {"action": "lift_selected", "_selected_action": [row.pk]})
    assert ask.status_code == 200
    assert "Reason for lifting" in ask.content.decode()
    row.refresh_from_db()
    assert row.is_active

    staff_client.post(
        LIST,
        {
            "action": "lift_selected",
            "_selected_action": [row.pk],
            "confirm": "yes",
            "note": "typo in the address list",
        },
    )
    row.refresh_from_db()
    assert not row.is_active
    assert row.events.get(action="lift").note == "typo in the address list"
    assert row.events.get(action="lift").actor_label == "staff"


def test_staff_without_the_permission_cannot_lift_a_complaint(client, django_user_model, suppress):
    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_suppression", "change_suppression"])
    )
    client.force_login(clerk)
    row = suppress("c@example.com", "complaint")
    response = client.post(
        LIST,
        {
            "action": "lift_selected",
            "_selected_action": [row.pk],
            "confirm": "yes",
            "note": "asked nicely",
        },
        follow=True,
    )
    assert "permission" in response.content.decode()
    row.refresh_from_db()
    assert row.is_active


def test_staff_add_records_the_user_as_evidence(staff_client, default_tenant):
    response = staff_client.post(
        f"{LIST}add/",
        {
            "address": "Added@Example.com",
            "tenant": default_tenant.pk,
            "scope": "",
            "reason": "legal",
            "note": "court order 17/2026",
        },
        follow=True,
    )
    assert response.status_code == 200
    row = Suppression.objects.get()
    assert (row.address, row.scope, row.origin, row.evidence) == (
        "added@example.com",
        "global",
        "staff",
        staff_client.user,
    )
    assert row.evidence_note == "court order 17/2026"


def test_staff_add_reports_a_bad_address(staff_client, default_tenant):
    response = staff_client.post(
        f"{LIST}add/",
        {"address": "nope", "tenant": default_tenant.pk, "reason": "manual", "note": "x"},
    )
    assert "invalid address" in response.content.decode()
    assert Suppression.objects.count() == 0


def test_entries_cannot_be_edited_or_deleted_in_place(staff_client, suppress):
    row = suppress("e@example.com", "manual")
    staff_client.post(f"{LIST}{row.pk}/change/", {"reason": "legal"})
    staff_client.post(f"{LIST}{row.pk}/delete/", {"post": "yes"})
    row.refresh_from_db()
    assert row.reason == "manual"


@pytest.mark.django_db(transaction=True)
def test_import_upload_shows_progress_and_bad_rows(staff_client, default_tenant):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile(
        "list.csv", b"email,reason\nx@example.com,unsubscribe\nbad,manual\n"
    )
    response = staff_client.post(
        "/admin/suppression/importjob/add/",
        {"file": upload, "format": "", "tenant": default_tenant.pk},
        follow=True,
    )
    page = response.content.decode()
    job = ImportJob.objects.get()
    assert job.status == "done"
    assert re.search(r'<progress value="100" max="100">', page)
    assert "line 3: invalid address" in page
    assert Suppression.objects.filter(address="x@example.com").exists()
    listing = staff_client.get("/admin/suppression/importjob/").content.decode()
    assert "<progress" in listing
