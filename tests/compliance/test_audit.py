"""Every staff, API and command change to the core models is recorded, and never rewritten."""

import pytest
from django.db import DatabaseError, connection, transaction

from compliance import audit, services
from compliance.models import ApiKey, AuditEvent, AuditTrailIsAppendOnly, Stream, Tenant
from tests.support import require

pytestmark = pytest.mark.django_db


def events_for(obj) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(model=obj._meta.label_lower, object_pk=str(obj.pk)).order_by("id")
    )


def test_staff_change_in_the_admin_is_recorded_with_who_and_what(staff_client):
    tenant = Tenant.objects.create(slug="acme", name="Acme")
    response = staff_client.post(
        f"/admin/compliance/tenant/{tenant.pk}/change/",
        {
            "slug": "acme",
            "name": "Acme Corp",
            "jurisdiction": "EU",
            # The form's other fields, as the browser sends them back unchanged.
            "time_zone": "UTC",
            "can_spam_business_days": "10",
            "provider_target_hours": "48",
            "streams-TOTAL_FORMS": "0",
            "streams-INITIAL_FORMS": "0",
            "streams-MIN_NUM_FORMS": "0",
            "streams-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content
    change = events_for(tenant)[-1]
    assert change.action == "update"
    assert change.actor_label == "staff"
    assert change.actor_user_id == staff_client.user.pk
    assert change.via == "admin"
    assert change.remote_addr == "127.0.0.1"
    assert change.changes == {"name": ["Acme", "Acme Corp"]}


def test_create_and_delete_are_recorded():
    tenant = Tenant.objects.create(slug="gone", name="Gone")
    stream = Stream.objects.create(tenant=tenant, slug="news", name="News", kind="commercial")
    stream_pk = stream.pk
    stream.delete()
    actions = [
        e.action
        for e in AuditEvent.objects.filter(model="compliance.stream", object_pk=str(stream_pk))
    ]
    assert sorted(actions) == ["create", "delete"]
    created = events_for(tenant)[0]
    assert created.action == "create"
    assert created.changes["slug"] == [None, "gone"]
    assert created.actor_label == "system"


def test_an_api_key_holder_is_named_as_the_actor_and_key_hashes_are_never_logged():
    with audit.acting_as(audit.Actor(label="api-key:crm", via="api", api_key_id=42)):
        api_key, plain = services.issue_api_key(name="crm", permissions=["consent:write"])
    created = events_for(api_key)[0]
    assert (created.actor_label, created.via, created.actor_api_key_id) == (
        "api-key:crm",
        "api",
        42,
    )
    assert created.changes["key_hash"] == [None, "[redacted]"]
    assert plain not in str(created.changes)
    assert api_key.key_hash not in str(created.changes)


def test_revoking_a_key_is_recorded():
    api_key, _ = services.issue_api_key(name="relay", permissions=["suppression:read"])
    services.revoke_api_key(api_key=api_key)
    revoke = events_for(api_key)[-1]
    assert revoke.action == "update"
    assert revoke.changes["revoked_at"][0] is None
    assert revoke.changes["revoked_at"][1] is not None


def test_usage_does_not_flood_the_trail():
    api_key, plain = services.issue_api_key(name="relay", permissions=["suppression:read"])
    for _ in range(3):
        services.authenticate_api_key(plain)
    assert [e.action for e in events_for(api_key)] == ["create"]


def test_audit_events_cannot_be_changed_or_deleted_through_the_model():
    Tenant.objects.create(slug="x", name="X")
    event = AuditEvent.objects.latest("id")
    event.actor_label = "someone else"
    with pytest.raises(AuditTrailIsAppendOnly):
        event.save()
    with pytest.raises(AuditTrailIsAppendOnly):
        event.delete()


def test_bulk_updates_and_deletes_are_refused():
    Tenant.objects.create(slug="x", name="X")
    with pytest.raises(AuditTrailIsAppendOnly):
        AuditEvent.objects.update(actor_label="someone else")
    with pytest.raises(AuditTrailIsAppendOnly):
        AuditEvent.objects.all().delete()


def test_the_database_itself_refuses_to_rewrite_the_trail():
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    Tenant.objects.create(slug="x", name="X")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE compliance_auditevent SET actor_label = 'someone else'")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM compliance_auditevent")
    assert AuditEvent.objects.filter(actor_label="someone else").count() == 0


def test_staff_can_read_the_trail_but_not_edit_it(staff_client):
    Tenant.objects.create(slug="visible", name="Visible Tenant")
    listing = staff_client.get("/admin/compliance/auditevent/")
    assert listing.status_code == 200
    assert "Visible Tenant" in listing.content.decode()
    assert staff_client.get("/admin/compliance/auditevent/add/").status_code == 403
    event = AuditEvent.objects.latest("id")
    detail = staff_client.post(
        f"/admin/compliance/auditevent/{event.pk}/change/", {"actor_label": "forged"}
    )
    assert detail.status_code == 403
    event.refresh_from_db()
    assert event.actor_label != "forged"
    assert ApiKey.objects.count() == 0
