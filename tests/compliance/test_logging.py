"""One log line per request and per task; JSON when LOG_FORMAT=json."""

import json

from tests.support import run_python, service_env

REQUEST_AND_TASK = (
    "import django; django.setup();"
    "from django.test import Client;"
    "Client(HTTP_HOST='localhost').get('/healthz');"
    "from compliance.tasks import ping; ping.delay()"
)


def json_lines(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_json_log_has_one_line_per_request_and_per_task():
    result = run_python(REQUEST_AND_TASK, env=service_env(LOG_FORMAT="json"))
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stderr)
    requests = [line for line in lines if line["logger"] == "compliance.request"]
    tasks = [line for line in lines if line["logger"] == "compliance.task"]
    assert len(requests) == 1
    assert requests[0]["method"] == "GET"
    assert requests[0]["path"] == "/healthz"
    assert requests[0]["status"] == 200
    assert requests[0]["duration_ms"] >= 0
    assert len(tasks) == 1
    assert tasks[0]["task"] == "compliance.ping"
    assert tasks[0]["state"] == "SUCCESS"


def test_text_log_is_the_default():
    result = run_python(REQUEST_AND_TASK, env=service_env())
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stderr) == []
    assert "compliance.request GET /healthz 200" in result.stderr
