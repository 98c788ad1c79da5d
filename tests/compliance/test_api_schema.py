"""The API and its OpenAPI schema agree: every operation of the served schema, called with
data generated from that schema (examples, boundary and invalid values, random valid ones),
answers without a server error and only with statuses, content types and bodies that the
schema documents."""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from compliance import services
from compliance.key_permissions import ALL_PERMISSIONS

# The schema as the service serves it at GET /api/schema/ (read through the WSGI application at
# collection time, so that pytest gets one test per operation); the calls then go over HTTP to
# the live server, against the test database. No operation is excluded: the ESP webhooks under
# /api/v1/events/esp/ are django-anymail's plain Django views, which the schema does not list
# (each ESP signs its own payloads; tests/fbl covers them). Loaded here, not from a fixture:
# schemathesis's lazy `from_fixture` schemas fail under pytest 9.2 (no `Function._nodeid`).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())

# POST /api/v1/reports takes the raw message: sent as the bytes schemathesis makes for binary.
schemathesis.serializer.alias("message/rfc822", "application/octet-stream")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def bearer(transactional_db, default_tenant) -> dict[str, str]:
    """A key that may do everything, so that scope checks never hide an operation's answers."""
    _, plain = services.issue_api_key(name="schema-check", permissions=ALL_PERMISSIONS, tenant=None)
    return {"Authorization": f"Bearer {plain}"}


@schema.parametrize()
# Enough examples to reach every documented status and the bounds of each field, few enough for
# CI on two cores. Derandomized and without an example database, and set here rather than left
# to Hypothesis's profile (which CI=true switches): every run, laptop or CI, sends the same cases.
# The live server and key are shared by an operation's examples: nothing an example stores
# changes what the next one may be answered.
@hypothesis.settings(
    max_examples=30,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
def test_operation_answers_as_documented(case, bearer, live_server):
    case.call_and_validate(base_url=live_server.url, headers=bearer, checks=CHECKS)
