"""Mail stored before the erasure index existed is indexed by the migration that adds it, so an
erasure finds it too."""

from __future__ import annotations

import gzip
import hashlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from fbl.models import Mention
from suppression.services import normalise_and_hash
from tests.fbl.messages import dsn

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("fbl", "0004_tenant_bound_sources")]
AFTER = [("fbl", "0005_erasure_lookups")]


def test_the_migration_indexes_mail_stored_before_it():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    raw = dsn("Final-Recipient: rfc822; Early.Bird@Example.com\nAction: failed\nStatus: 5.1.1\n")
    message = old.get_model("fbl", "InboundMessage").objects.create(
        source="pipe",
        raw_gzip=gzip.compress(raw),
        size=len(raw),
        sha256=hashlib.sha256(raw).hexdigest(),
    )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    _, digest = normalise_and_hash("early.bird@example.com")
    assert Mention.objects.filter(address_hash=digest, message_id=message.pk).exists()
