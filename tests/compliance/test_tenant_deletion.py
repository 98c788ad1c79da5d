"""A tenant whose opt-outs are on record cannot be deleted: the opt-out records are proof of
compliance. Their tenant is kept by Django (PROTECT), not by a database-side foreign key, which
cost the bulk paths a check per row."""

from __future__ import annotations

import pytest
from django.db.models import ProtectedError

from compliance.models import OptOutRequest, Tenant
from suppression.services import importing


@pytest.mark.django_db
def test_a_tenant_with_imported_opt_outs_cannot_be_deleted(suppress):
    tenant = Tenant.objects.create(slug="gone", name="Gone")
    suppress("pat@example.com", "unsubscribe", tenant=tenant)
    job = importing.create_job(
        content=b"email,reason\nlee@example.com,unsubscribe\n", filename="x.csv", tenant=tenant
    )
    importing.run_import(job)
    assert OptOutRequest.objects.filter(tenant=tenant).count() == 2

    with pytest.raises(ProtectedError) as refused:
        tenant.delete()

    kinds = {type(obj) for obj in refused.value.protected_objects}
    assert OptOutRequest in kinds
    assert Tenant.objects.filter(pk=tenant.pk).exists()
    assert OptOutRequest.objects.filter(tenant=tenant).count() == 2
