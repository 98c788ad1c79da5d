import json
import re

import pytest

from tests.support import run_python, service_env

pytestmark = pytest.mark.django_db

# A port nothing listens on: a database or broker that is down.
DEAD_POSTGRES = "postgres://postgres@127.0.0.1:1/compliance"
DEAD_REDIS = "redis://127.0.0.1:1/0"

GET_HEALTHZ = (
    "import django, json; django.setup();"
    "from django.test import Client;"
    "r = Client(HTTP_HOST='localhost').get('/healthz');"
    "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
)


def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "eager"}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_is_503_when_the_database_is_unreachable():
    result = run_python(
        GET_HEALTHZ, env=service_env(DATABASE_URL=DEAD_POSTGRES, DB_CONNECT_TIMEOUT="1")
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 503
    assert answer["body"]["status"] == "down"
    assert answer["body"]["database"].startswith("unreachable")


def test_healthz_stays_200_but_degraded_when_the_broker_is_down():
    result = run_python(GET_HEALTHZ, env=service_env(CELERY_BROKER_URL=DEAD_REDIS))
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 200
    assert answer["body"]["status"] == "degraded"
    assert answer["body"]["broker"].startswith("unreachable")


def test_openapi_schema_is_served(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Email compliance and suppression service"


def test_api_docs_load_nothing_from_outside(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger" in html.lower()
    external = re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", html)
    assert external == []


@pytest.fixture
def openapi(client) -> dict:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def _ref(schema: dict, ref: str) -> dict:
    node = schema
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _body_schema(schema: dict, path: str, method: str, status: str) -> dict:
    answer = schema["paths"][path][method]["responses"][status]
    if "$ref" in answer:
        answer = _ref(schema, answer["$ref"])
    body = answer["content"]["application/json"]["schema"]
    return _ref(schema, body["$ref"]) if "$ref" in body else body


def test_every_operation_documents_the_error_answers_of_one_shape(openapi):
    error = openapi["components"]["schemas"]["Error"]
    assert error["required"] == ["detail", "code"]
    assert set(error["properties"]) == {"detail", "code", "errors"}
    operations = [(path, method) for path, item in openapi["paths"].items() for method in item]
    assert len(operations) >= 14
    for path, method in operations:
        for status in ("400", "401", "403", "404", "413", "415"):
            assert _body_schema(openapi, path, method, status) == error, (path, method, status)


def test_the_list_is_documented_as_a_cursor_page(openapi):
    page = _body_schema(openapi, "/api/v1/suppressions/", "get", "200")
    assert set(page["properties"]) == {"next", "previous", "results"}
    assert page["properties"]["results"]["type"] == "array"
    assert page["properties"]["next"]["nullable"] is True
    params = {p["name"]: p for p in openapi["paths"]["/api/v1/suppressions/"]["get"]["parameters"]}
    assert {"cursor", "page_size"} <= set(params)
    assert (params["page_size"]["schema"]["minimum"], params["page_size"]["schema"]["maximum"]) == (
        1,
        1000,
    )


def test_documented_success_statuses_are_the_ones_answered(openapi):
    # A lift answers the lifted entry (200); a report is 201 when new, 200 when posted before.
    delete = openapi["paths"]["/api/v1/suppressions/{id}/"]["delete"]["responses"]
    assert "204" not in delete
    assert _body_schema(openapi, "/api/v1/suppressions/{id}/", "delete", "200")["properties"]
    reports = openapi["paths"]["/api/v1/reports"]["post"]["responses"]
    assert {"200", "201"} <= set(reports)


def test_addresses_and_bounds_of_requests_are_documented(openapi):
    schemas = openapi["components"]["schemas"]
    for component in ("SuppressionInRequest", "LinkRequestRequest"):
        address = schemas[component]["properties"].get("address") or schemas[component][
            "properties"
        ].get("recipient")
        assert address["format"] == "email", component
        assert address["maxLength"] == 512
    check = {
        p["name"]: p for p in openapi["paths"]["/api/v1/suppressions/check"]["get"]["parameters"]
    }
    assert check["address"]["schema"]["format"] == "email"
    changes = openapi["paths"]["/api/v1/suppressions/changes"]["get"]["parameters"]
    limit = next(p for p in changes if p["name"] == "limit")["schema"]
    assert (limit["minimum"], limit["maximum"]) == (1, 10_000)


@pytest.mark.parametrize("path", ["/api/v1/unsubscribe-links", "/api/v1/events/kumomta"])
def test_endpoints_that_take_one_item_or_a_list_document_both(openapi, path):
    body = openapi["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    kinds = _ref(openapi, body["$ref"])["oneOf"]
    assert [k.get("type", "object") for k in kinds] == ["object", "array"]


def test_the_import_documents_both_ways_to_send_the_file(openapi):
    body = openapi["paths"]["/api/v1/suppressions/import"]["post"]["requestBody"]["content"]
    assert set(body) == {"text/csv", "multipart/form-data"}
    assert body["multipart/form-data"]["schema"]["required"] == ["file"]


def test_an_api_url_that_matches_no_route_answers_the_api_error(client):
    answer = client.get("/api/v1/suppressions/-1/")
    assert answer.status_code == 404
    assert answer.json() == {"detail": "no such endpoint or object", "code": "not_found"}
    assert "html" in client.get("/no-such-page/")["Content-Type"]
