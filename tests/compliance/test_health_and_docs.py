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
