"""`python manage.py preflight FILE [--nameserver HOST[:PORT]] [--transactional] --json`."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from compliance.preflight.checks import CHECK_NAMES

from .messages import compose, sign

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    return subprocess.run(
        [sys.executable, "manage.py", "preflight", *args],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        timeout=120,
        env=env,
    )


@pytest.fixture
def good_file(tmp_path, good) -> Path:
    path = tmp_path / "sale.eml"
    path.write_bytes(good)
    return path


def test_json_of_a_good_message(good_file, dns):
    result = run(str(good_file), "--nameserver", dns.nameserver, "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert list(answer) == ["kind", "verdict", "checks"]
    assert (answer["kind"], answer["verdict"]) == ("commercial", "pass")
    assert [c["name"] for c in answer["checks"]] == list(CHECK_NAMES)
    assert {c["status"] for c in answer["checks"]} == {"pass"}


def test_failing_checks_still_exit_0(tmp_path, key, dns):
    path = tmp_path / "bad.eml"
    path.write_bytes(sign(compose(subject="", list_unsubscribe=None), key))
    result = run(str(path), "--nameserver", dns.nameserver, "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["verdict"] == "fail"
    failed = [c["name"] for c in answer["checks"] if c["status"] == "fail"]
    assert failed == ["list_unsubscribe_https", "subject"]


def test_transactional_and_stdin(key, dns):
    receipt = sign(
        compose(list_unsubscribe=None, list_unsubscribe_post=None, text="Shipped.", html=None),
        key,
        signed=["from", "to", "subject", "date"],
    )
    result = run("-", "--nameserver", dns.nameserver, "--transactional", "--json", stdin=receipt)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert (answer["kind"], answer["verdict"]) == ("transactional", "pass")


def test_without_json_a_table_for_a_person(good_file, dns):
    out = io.StringIO()
    call_command("preflight", str(good_file), "--nameserver", dns.nameserver, stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "PASS (judged as commercial mail)"
    assert lines[4].split() == ["pass", "dkim_valid", "verified:", "d=example.test", "s=s1"]
    assert len(lines) == 1 + len(CHECK_NAMES)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["/no/such/file.eml"], "cannot read /no/such/file.eml: No such file or directory"),
        (["{tmp}"], "cannot read {tmp}: Is a directory"),
        (["{empty}"], "{empty}: the message is empty"),
        (["{json}"], "{json}: no header fields of a message"),
        (["{good}", "--nameserver", "dns.example.test"], "is not an IP address"),
        (["{good}", "--nameserver", "127.0.0.1:99999"], "the port must be a number"),
    ],
)
def test_bad_input_is_refused_with_the_reason_and_status_2(tmp_path, good_file, args, reason):
    files = {
        "tmp": str(tmp_path),
        "empty": str(tmp_path / "empty.eml"),
        "json": str(tmp_path / "data.json"),
        "good": str(good_file),
    }
    (tmp_path / "empty.eml").write_bytes(b"")
    (tmp_path / "data.json").write_bytes(b'{"not": "a message"}')
    out = io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("preflight", *[arg.format(**files) for arg in args], "--json", stdout=out)
    assert refused.value.returncode == 2
    assert reason.format(**files) in str(refused.value)
    assert out.getvalue() == ""


def test_an_unreadable_file_exits_2_from_the_shell():
    result = run("/no/such/file.eml", "--json")
    assert result.returncode == 2
    assert result.stdout == b""
    assert "cannot read /no/such/file.eml: No such file or directory" in result.stderr.decode()
