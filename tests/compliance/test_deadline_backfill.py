"""Opt-outs recorded before they carried due times get them (migration 0015, and `manage.py
backfill_deadlines` with a progress bar), each counted in its tenant's time zone; the command
can be run again, and with --recompute redoes the open ones after a tenant's zone changed."""

from __future__ import annotations

import datetime
import importlib
import io
import zoneinfo

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from compliance import deadline_backfill, deadlines, propagation
from compliance.models import OptOutRequest, Tenant

UTC = datetime.UTC
MIGRATION = ("compliance", "0015_backfill_opt_out_deadlines")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def new_york(make_tenant) -> Tenant:
    tenant = make_tenant("nyc")
    tenant.time_zone = "America/New_York"
    tenant.can_spam_business_days = 5
    tenant.provider_target_hours = 24
    tenant.save()
    return tenant


@pytest.fixture
def record(suppress):
    """Record an opt-out through the service, optionally as it was before due times existed."""

    def make(address: str, received: str, *, old: bool = True, **kwargs) -> OptOutRequest:
        entry = suppress(address, "unsubscribe", created_at=utc(received), **kwargs)
        rows = OptOutRequest.objects.filter(address_hash=entry.address_hash)
        if old:
            rows.update(provider_due_at=None, can_spam_due_at=None, propagated_at=None)
        return rows.latest("pk")

    return make


@pytest.fixture
def old_rows(record, new_york, default_tenant):
    """Three opt-outs from before due times: a default-tenant one (UTC), a New York one received
    Thursday 23:30 there (Friday in UTC), and a shared one (no tenant: the default policy)."""
    rows = {
        "utc": record("a@example.com", "2026-12-04 04:30"),
        "nyc": record("b@example.com", "2026-12-04 04:30", tenant=new_york),
        "shared": record("c@example.com", "2026-11-25 12:00"),
    }
    OptOutRequest.objects.filter(pk=rows["shared"].pk).update(tenant=None)
    return rows


def fresh(row: OptOutRequest) -> OptOutRequest:
    return OptOutRequest.objects.get(pk=row.pk)


def test_old_opt_outs_get_the_due_times_of_their_tenants_zone_and_policy(old_rows, new_york):
    counted = []
    assert deadline_backfill.backfill(OptOutRequest, Tenant, progress=counted.append) == 3
    assert sum(counted) == 3
    utc_row, nyc_row, shared = (fresh(old_rows[k]) for k in ("utc", "nyc", "shared"))
    # Fri 4 Dec in UTC: ten business days end with Fri 18 Dec.
    assert utc_row.can_spam_due_at == utc("2026-12-19 00:00")
    assert utc_row.provider_due_at == utc("2026-12-06 04:30")
    # Thu 3 Dec in New York, five business days (Fri 4 ... Thu 10), 24 hours.
    assert nyc_row.can_spam_due_at == datetime.datetime(2026, 12, 11, tzinfo=NEW_YORK)
    assert nyc_row.provider_due_at == utc("2026-12-05 04:30")
    assert nyc_row.can_spam_due_at == (
        deadlines.opt_out_due(nyc_row.received_at, new_york.opt_out_policy).can_spam_due_at
    )
    # Shared: received on Thanksgiving eve, the default ten days (Fri 27 ... Thu 10 Dec), 48 hours.
    assert shared.can_spam_due_at == utc("2026-12-11 00:00")
    assert shared.provider_due_at == utc("2026-11-27 12:00")


def test_old_opt_outs_are_done_once_applied_since_nothing_was_downstream(old_rows):
    deadline_backfill.backfill(OptOutRequest, Tenant)
    for row in old_rows.values():
        row = fresh(row)
        assert row.propagated_at == row.applied_at is not None


def test_opt_outs_that_have_due_times_are_left_alone(record, old_rows, monkeypatch):
    monkeypatch.setattr(propagation, "_waits", lambda tenant_id: True)
    current = record("open@example.com", "2026-12-01 10:00", old=False)
    before = (current.provider_due_at, current.can_spam_due_at)
    OptOutRequest.objects.filter(pk=current.pk).update(can_spam_due_at=utc("2030-01-01 00:00"))
    assert deadline_backfill.backfill(OptOutRequest, Tenant) == 3
    current = fresh(current)
    assert current.can_spam_due_at == utc("2030-01-01 00:00")  # not this run's business
    assert current.provider_due_at == before[0]
    assert current.propagated_at is None  # still waiting for downstream systems


def test_the_command_shows_progress_and_can_be_run_again(old_rows):
    out, err = io.StringIO(), io.StringIO()
    call_command("backfill_deadlines", stdout=out, stderr=err)
    assert "Filled the due times of 3 opt-out(s)." in out.getvalue()
    assert "3/3" in err.getvalue() and "100%" in err.getvalue()
    filled = [fresh(row).can_spam_due_at for row in old_rows.values()]
    out = io.StringIO()
    call_command("backfill_deadlines", stdout=out, stderr=io.StringIO())
    assert "Filled the due times of 0 opt-out(s)." in out.getvalue()
    assert [fresh(row).can_spam_due_at for row in old_rows.values()] == filled


def test_recompute_moves_open_opt_outs_to_a_changed_zone_and_leaves_closed_ones(
    record, old_rows, new_york, monkeypatch
):
    call_command("backfill_deadlines", stdout=io.StringIO(), stderr=io.StringIO())
    monkeypatch.setattr(propagation, "_waits", lambda tenant_id: True)
    open_row = record("open@example.com", "2026-12-04 04:30", old=False, tenant=new_york)
    assert open_row.can_spam_due_at == datetime.datetime(2026, 12, 11, tzinfo=NEW_YORK)
    new_york.time_zone = "Europe/Berlin"
    new_york.save()
    out = io.StringIO()
    call_command("backfill_deadlines", "--recompute", stdout=out, stderr=io.StringIO())
    assert "Filled the due times of 1 opt-out(s)." in out.getvalue()
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    # Fri 4 Dec 05:30 in Berlin: five business days end with Fri 11 Dec there.
    assert fresh(open_row).can_spam_due_at == datetime.datetime(2026, 12, 12, tzinfo=berlin)
    # Propagated before the change: its deadline stays as it was counted.
    assert fresh(old_rows["nyc"]).can_spam_due_at == datetime.datetime(
        2026, 12, 11, tzinfo=NEW_YORK
    )


def test_the_migration_fills_old_rows_with_its_historical_models(old_rows):
    migration = importlib.import_module(f"compliance.migrations.{MIGRATION[1]}")
    historical = MigrationLoader(connection).project_state(MIGRATION).apps
    migration.backfill(historical, None)
    for row in old_rows.values():
        row = fresh(row)
        assert row.can_spam_due_at is not None
        assert row.provider_due_at is not None
        assert row.propagated_at == row.applied_at
