"""Adding and lifting entries: one row per key, an append-only history, guarded lifts."""

import pytest
from django.contrib.auth.models import Permission
from django.db import DatabaseError, connection, transaction

from compliance.errors import PermissionDenied, ServiceError
from compliance.models import AuditTrailIsAppendOnly, OptOutRequest
from suppression import services
from suppression.models import Suppression, SuppressionEvent
from tests.support import require

pytestmark = pytest.mark.django_db


def history(row):
    return list(row.events.order_by("id").values_list("action", "reason"))


def test_a_second_reason_for_the_same_key_is_history_not_a_second_row(suppress):
    row = suppress("a@example.com", "unsubscribe", scope="commercial")
    suppress("A@Example.com", "complaint", scope="commercial")
    assert Suppression.objects.count() == 1
    row.refresh_from_db()
    assert row.reason == "complaint"  # the weightier reason
    assert history(row) == [("add", "unsubscribe"), ("reason", "complaint")]


def test_a_later_complaint_never_unblocks_transactional_mail(suppress, default_tenant):
    from suppression import selectors

    suppress("dead@example.com", "hard_bounce", scope="global")
    suppress("dead@example.com", "complaint", scope="global")
    transactional = default_tenant.streams.get(slug="transactional")
    assert selectors.is_suppressed(stream=transactional, address="dead@example.com").suppressed


def test_a_protected_reason_given_later_still_guards_the_entry(suppress, django_user_model):
    row = suppress("dead@example.com", "hard_bounce", scope="global")
    suppress("dead@example.com", "complaint", scope="global")
    row.refresh_from_db()
    assert row.reason == "hard_bounce"
    clerk = django_user_model.objects.create_user("clerk", is_staff=True)
    with pytest.raises(PermissionDenied, match="complaint"):
        services.lift(suppression=row, note="bounce was a glitch", user=clerk)


def test_a_lighter_later_reason_keeps_the_weightier_one(suppress):
    row = suppress("a@example.com", "complaint", scope="commercial")
    suppress("a@example.com", "manual", scope="commercial")
    row.refresh_from_db()
    assert row.reason == "complaint"
    assert history(row) == [("add", "complaint"), ("reason", "manual")]


def test_the_same_entry_again_changes_nothing(suppress):
    row = suppress("a@example.com", "unsubscribe")
    suppress("a@example.com", "unsubscribe")
    assert history(row) == [("add", "unsubscribe")]
    assert OptOutRequest.objects.count() == 1


def test_different_scopes_are_different_rows(suppress):
    suppress("a@example.com", "unsubscribe", scope="commercial")
    suppress("a@example.com", "unsubscribe", scope="stream:marketing")
    assert Suppression.objects.count() == 2


def test_an_opt_out_writes_an_opt_out_request_with_the_hash_only(suppress):
    row = suppress("a@example.com", "unsubscribe", scope="stream:marketing")
    request = OptOutRequest.objects.get()
    assert request.channel == "api"
    assert request.scope_label == "stream:marketing"
    assert bytes(request.address_hash) == bytes(row.address_hash)
    assert request.applied_at is not None


def test_a_bounce_is_not_an_opt_out(suppress):
    suppress("a@example.com", "hard_bounce")
    assert OptOutRequest.objects.count() == 0


def test_the_plain_address_is_stored_normalised_beside_its_hash(suppress):
    row = suppress("  Someone@EXAMPLE.com ", "manual")
    assert row.address == "someone@example.com"
    assert len(bytes(row.address_hash)) == 32


def test_an_invalid_address_is_refused_and_nothing_is_written(suppress):
    with pytest.raises(ServiceError, match="invalid address"):
        suppress("not-an-address", "manual")
    assert Suppression.objects.count() == 0
    assert SuppressionEvent.objects.count() == 0


def test_lifting_needs_a_reason(suppress):
    row = suppress("a@example.com", "unsubscribe")
    with pytest.raises(ServiceError, match="reason is required"):
        services.lift(suppression=row, note="  ")
    row.refresh_from_db()
    assert row.is_active


def test_lift_and_readd_are_both_kept_in_the_history(suppress, admin_user):
    row = suppress("a@example.com", "unsubscribe")
    services.lift(suppression=row, note="recipient asked to be re-added by phone", user=admin_user)
    row.refresh_from_db()
    assert not row.is_active
    suppress("a@example.com", "unsubscribe")
    row.refresh_from_db()
    assert row.is_active
    assert [a for a, _ in history(row)] == ["add", "lift", "readd"]
    lift_event = row.events.get(action="lift")
    assert lift_event.note == "recipient asked to be re-added by phone"


def test_lifting_twice_is_a_conflict(suppress):
    row = suppress("a@example.com", "manual")
    services.lift(suppression=row, note="mistake")
    with pytest.raises(ServiceError) as error:
        services.lift(suppression=row, note="again")
    assert error.value.status == 409


@pytest.mark.parametrize("reason", ["complaint", "objection", "erasure", "legal"])
def test_protected_entries_need_the_separate_permission(suppress, django_user_model, reason):
    row = suppress("a@example.com", reason)
    staff = django_user_model.objects.create_user("clerk", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="change_suppression"))
    with pytest.raises(PermissionDenied):
        services.lift(suppression=row, note="please", user=staff)
    with pytest.raises(PermissionDenied):
        services.lift(suppression=row, note="an API key tries")
    staff.user_permissions.add(Permission.objects.get(codename="lift_protected"))
    staff = django_user_model.objects.get(pk=staff.pk)  # permissions are cached per object
    services.lift(suppression=row, note="confirmed with the recipient in writing", user=staff)
    row.refresh_from_db()
    assert not row.is_active


def test_history_cannot_be_rewritten(suppress):
    row = suppress("a@example.com", "manual")
    event = row.events.get()
    with pytest.raises(AuditTrailIsAppendOnly):
        event.save()
    with pytest.raises(AuditTrailIsAppendOnly):
        SuppressionEvent.objects.all().delete()


def test_the_database_refuses_to_rewrite_history(suppress):
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    suppress("a@example.com", "manual")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM suppression_suppressionevent")


def test_the_actor_is_recorded(suppress):
    from compliance import audit

    with audit.acting_as(audit.Actor(label="api-key:crm", via="api", api_key_id=7)):
        row = suppress("a@example.com", "manual")
    event = row.events.get()
    assert (event.actor_label, event.via, event.actor_api_key_id) == ("api-key:crm", "api", 7)
