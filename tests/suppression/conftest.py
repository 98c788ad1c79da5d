"""Fixtures of the tests of the partitioned suppression list."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection, connections

from suppression import partitioning
from tests.support import require


@pytest.fixture
def postgresql(db):
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")


@pytest.fixture
def rebuilt_back(transactional_db, postgresql):
    """Tests that rebuild the table leave it as the migration made it."""
    yield
    connections.close_all()
    if partitioning.partition_count(connection) != settings.SUPPRESSION_PARTITIONS:
        partitioning.rebuild(connection, partitions=settings.SUPPRESSION_PARTITIONS)
