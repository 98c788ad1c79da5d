"""`python manage.py parse_report FILE... --json` (DESIGN.md public contract)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from .messages import FIXTURES, require_fixtures

REPO = Path(__file__).resolve().parents[2]
KEYS = {
    "file",
    "kind",
    "feedback_type",
    "reported_domain",
    "source_ip",
    "original_message_id",
    "arrival_date",
    "recipients",
    "problems",
}
RECIPIENT_KEYS = {"address", "status", "action", "hard", "diagnostic", "found_by"}


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    return subprocess.run(
        [sys.executable, "manage.py", "parse_report", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_json_lines_one_per_file_in_the_public_shape():
    require_fixtures()
    files = [
        FIXTURES / "arf" / "arf-17.eml",
        FIXTURES / "dsn" / "lhost-postfix-14.eml",
        FIXTURES / "autoreply" / "rfc3834-01.eml",
    ]
    result = run(*map(str, files), "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(f) for f in files]
    for line in lines:
        assert set(line) == KEYS
        for recipient in line["recipients"]:
            assert set(recipient) == RECIPIENT_KEYS
    complaint, bounce, auto_reply = lines
    assert (complaint["kind"], complaint["feedback_type"], complaint["source_ip"]) == (
        "arf",
        "abuse",
        "192.0.2.3",
    )
    assert [r["address"] for r in complaint["recipients"]] == [
        "kijitora@example.com",
        "sabatora@example.net",
    ]
    assert bounce["kind"] == "dsn"
    assert [(r["address"], r["status"], r["hard"]) for r in bounce["recipients"]] == [
        ("kijitora@2jo.example.jp", "5.1.1", True)
    ]
    assert auto_reply["kind"] == "autoreply"


def test_unreadable_file_gets_its_line_and_exit_status_2_after_the_others():
    require_fixtures()
    good = FIXTURES / "dsn" / "lhost-postfix-14.eml"
    result = run("/nonexistent/report.eml", str(good), "--json")
    assert result.returncode == 2
    missing, parsed = (json.loads(line) for line in result.stdout.splitlines())
    assert missing["file"] == "/nonexistent/report.eml"
    assert missing["kind"] == "unknown"
    assert missing["recipients"] == []
    assert any("cannot read" in p for p in missing["problems"])
    assert parsed["kind"] == "dsn"
    assert "could not be read" in result.stderr


def test_human_summary_without_json():
    require_fixtures()
    result = run(str(FIXTURES / "dsn" / "lhost-gmx-03.eml"))
    assert result.returncode == 0, result.stderr
    assert "dsn, 2 recipients" in result.stdout
    assert "mikeneko@example.co.jp  5.2.1 failed hard permanent" in result.stdout
    assert "sabineko@example.co.jp  5.2.2 failed soft transient" in result.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout.splitlines()[0])


@pytest.mark.django_db
def test_writes_nothing_to_the_database(django_assert_num_queries, capsys):
    require_fixtures()
    with django_assert_num_queries(0):
        call_command("parse_report", str(FIXTURES / "arf" / "arf-01.eml"), "--json")
    line = json.loads(capsys.readouterr().out)
    assert line["kind"] == "arf"
