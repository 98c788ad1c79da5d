"""`POST /api/v1/preflight`: a raw message in, the checks out; the `preflight` permission."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from compliance.preflight.checks import CHECK_NAMES

from .messages import compose, sign

pytestmark = pytest.mark.django_db

URL = "/api/v1/preflight"


def post(client: APIClient, raw: bytes, query: str = "", content_type="message/rfc822"):
    return client.generic("POST", URL + query, raw, content_type=content_type)


def statuses(answer) -> dict[str, str]:
    return {check["name"]: check["status"] for check in answer.json()["checks"]}


def test_a_good_message_answers_every_check_passing(api_client, dkim_dns, good):
    answer = post(api_client("preflight"), good)
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert list(body) == ["kind", "verdict", "checks"]
    assert (body["kind"], body["verdict"]) == ("commercial", "pass")
    assert [check["name"] for check in body["checks"]] == list(CHECK_NAMES)
    assert all(set(check) == {"name", "status", "message"} for check in body["checks"])
    assert statuses(answer) == dict.fromkeys(CHECK_NAMES, "pass")


def test_a_bad_message_is_still_answered_200_with_its_failures(api_client, dkim_dns, key):
    raw = sign(compose(list_unsubscribe_post="yes please", subject=""), key)
    answer = post(api_client("preflight"), raw)
    assert answer.status_code == 200
    assert answer.json()["verdict"] == "fail"
    assert {n for n, s in statuses(answer).items() if s == "fail"} == {
        "list_unsubscribe_post",
        "subject",
    }


def test_the_key_needs_the_preflight_permission(api_client, dkim_dns, good):
    assert post(APIClient(), good).status_code == 401
    refused = post(api_client("reports:write", "suppression:read"), good)
    assert refused.status_code == 403
    assert refused.json() == {
        "detail": "this API key lacks the permission preflight",
        "code": "permission_denied",
    }
    assert post(api_client("preflight"), good).status_code == 200


def test_a_key_made_by_the_command_with_preflight_may_check(dkim_dns, default_tenant, good):
    out = io.StringIO()
    call_command("create_api_key", "campaign-tool", "--permissions", "preflight", stdout=out)
    assert "with permissions preflight." in out.getvalue()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {out.getvalue().splitlines()[-1]}")
    assert post(client, good).status_code == 200


def test_a_transactional_message_is_judged_by_kind_or_stream(api_client, dkim_dns, key):
    receipt = sign(
        compose(list_unsubscribe=None, list_unsubscribe_post=None, text="Shipped.", html=None),
        key,
        signed=["from", "to", "subject", "date"],
    )
    client = api_client("preflight")
    as_marketing = post(client, receipt)
    assert as_marketing.json()["verdict"] == "fail"
    for query in (
        "?kind=transactional",
        "?stream=transactional",
        "?stream=transactional&tenant=default",
    ):
        answer = post(client, receipt, query)
        assert answer.status_code == 200, answer.json()
        assert (answer.json()["kind"], answer.json()["verdict"]) == ("transactional", "pass")
    assert post(client, receipt, "?stream=marketing").json()["kind"] == "commercial"


def test_a_key_bound_to_a_tenant_reads_its_own_streams(api_client, dkim_dns, make_tenant, good):
    acme = make_tenant("acme", transactional="receipts")
    client = api_client("preflight", tenant=acme)
    assert post(client, good, "?stream=receipts").json()["kind"] == "transactional"
    other = post(client, good, "?stream=receipts&tenant=default")
    assert (other.status_code, other.json()["code"]) == (403, "permission_denied")


def test_the_envelope_sender_can_be_given(api_client, dkim_dns, key):
    raw = sign(compose(from_="news@brand.test"), key)
    client = api_client("preflight")
    assert statuses(post(client, raw))["dmarc_alignment"] == "fail"
    assert statuses(post(client, raw, "?mail_from=bounces@brand.test"))["dmarc_alignment"] == "pass"


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("?kind=bulk", '"bulk" is not a valid choice.'),
        ("?stream=marketing&kind=commercial", "give stream or kind, not both"),
        ("?tenant=default", "tenant is read only with stream"),
    ],
)
def test_bad_parameters_are_refused(api_client, dkim_dns, good, query, words):
    answer = post(api_client("preflight"), good, query)
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"
    assert words in str(answer.json()["errors"])


def test_an_unknown_stream_is_named(api_client, dkim_dns, good):
    answer = post(api_client("preflight"), good, "?stream=newsletter")
    assert answer.status_code == 400
    assert answer.json() == {
        "detail": "unknown stream 'newsletter' for tenant 'default'; known: marketing, "
        "transactional",
        "code": "unknown_stream",
    }


@pytest.mark.parametrize(
    ("raw", "code", "detail"),
    [
        (b"", "empty_message", "the body must hold the raw message"),
        (b"\r\n  \r\n", "empty_message", "the body must hold the raw message"),
        (b"hello, this is no message", "not_a_message", "no header fields of a message"),
    ],
)
def test_a_body_that_is_no_message_is_refused(api_client, dkim_dns, raw, code, detail):
    answer = post(api_client("preflight"), raw)
    assert answer.status_code == 400
    assert answer.json()["code"] == code
    assert answer.json()["detail"].startswith(detail)


def test_another_content_type_is_refused(api_client, dkim_dns, good):
    answer = post(api_client("preflight"), good, content_type="application/json")
    assert answer.status_code == 415
    assert answer.json() == {
        "detail": 'Unsupported media type "application/json" in request.',
        "code": "unsupported_media_type",
    }


def test_a_message_over_the_limit_is_refused_before_it_is_read(
    api_client, dkim_dns, good, settings
):
    settings.INBOUND_MAX_BYTES = 1000  # the API takes four times this
    answer = post(api_client("preflight"), good + b"x" * 4001)
    assert answer.status_code == 413
    assert answer.json() == {"detail": "a message over 4000 bytes is refused", "code": "too_large"}


def test_the_operation_is_in_the_openapi_schema(client):
    schema = json.loads(
        client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content
    )
    operation = schema["paths"]["/api/v1/preflight"]["post"]
    assert list(operation["requestBody"]["content"]) == ["message/rfc822"]
    assert {p["name"] for p in operation["parameters"]} == {"stream", "tenant", "kind", "mail_from"}
    assert {"200", "400", "401", "403", "413", "415"} <= set(operation["responses"])
    schemas = schema["components"]["schemas"]
    assert set(schemas["PreflightOut"]["properties"]) == {"kind", "verdict", "checks"}
    assert schemas["CheckStatusEnum"]["enum"] == ["pass", "warn", "fail"]
    assert schemas["PreflightCheckNameEnum"]["enum"] == list(CHECK_NAMES)
