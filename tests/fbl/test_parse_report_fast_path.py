"""`manage.py parse_report` runs without Django's start-up (fbl/report_cli.py) and prints the
same bytes, with the same exit status, as the Django command it stands in for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import service_env

from .messages import FIXTURES, require_fixtures

REPO = Path(__file__).resolve().parents[2]

# The Django command itself, through Django's own command line, as manage.py ran it before.
THROUGH_DJANGO = (
    "import sys\n"
    "from django.core.management import execute_from_command_line\n"
    "execute_from_command_line(['manage.py', 'parse_report', *sys.argv[1:]])\n"
)

SAMPLES = [
    "arf/arf-17.eml",
    "arf/arf-01.eml",
    "dsn/lhost-postfix-14.eml",
    "dsn/lhost-gmx-03.eml",
    "dsn/lhost-exim-01.eml",
    "dsn/lhost-office365-01.eml",
    "autoreply/rfc3834-01.eml",
]


def fast(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "parse_report", *args],
        cwd=REPO,
        capture_output=True,
        timeout=120,
        env=env or service_env(),
    )


def django(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", THROUGH_DJANGO, *args],
        cwd=REPO,
        capture_output=True,
        timeout=120,
        env=service_env(),
    )


def samples() -> list[str]:
    require_fixtures()
    files = [FIXTURES / name for name in SAMPLES]
    missing = [str(f) for f in files if not f.is_file()]
    assert not missing, f"fixtures gone from the corpus: {missing}"
    return [str(f) for f in files]


@pytest.mark.parametrize("options", [[], ["--json"], ["--max-bytes", "1500", "--json"]])
def test_same_bytes_and_status_as_the_django_command(options):
    files = samples()
    ours, theirs = fast(*files, *options), django(*files, *options)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout
    assert ours.stdout.count(b"\n") >= len(files)
    assert ours.stderr == theirs.stderr == b""


def test_unreadable_files_give_the_same_lines_reason_and_status_2(tmp_path):
    files = samples()[:2]
    args = [str(tmp_path / "missing.eml"), *files, str(tmp_path)]  # a directory cannot be read
    ours, theirs = fast(*args, "--json"), django(*args, "--json")
    assert (ours.returncode, ours.stdout, ours.stderr) == (
        theirs.returncode,
        theirs.stdout,
        theirs.stderr,
    )
    assert ours.returncode == 2
    assert ours.stderr == b"CommandError: 2 of 4 files could not be read\n"
    assert b"cannot read the file: No such file or directory" in ours.stdout
    assert b"cannot read the file: Is a directory" in ours.stdout


def test_loads_no_django_module():
    files = samples()
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "manage.py", "parse_report", *files, "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=service_env(),
    )
    assert result.returncode == 0, result.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()]
    assert "fbl.parse" in imported
    assert [m for m in imported if m == "django" or m.startswith("django.")] == []


def test_needs_no_setting_or_service():
    # Production mode with no secret, no database and no broker: parsing needs none of them
    # (the Django command would refuse to start: its system checks want the secrets).
    env = {k: v for k, v in service_env().items() if k != "DEBUG"}
    env["DATABASE_URL"] = "postgres://nobody@127.0.0.1:1/none"
    result = fast(samples()[0], env=env)
    assert result.returncode == 0, result.stderr
    assert b": arf (abuse), 2 recipients" in result.stdout


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ([], b"the following arguments are required: FILE"),
        (["--max-bytes", "many", "x.eml"], b"argument --max-bytes: invalid int value: 'many'"),
        (["--no-such-option", "x.eml"], b"unrecognized arguments: --no-such-option"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(args, said):
    ours, theirs = fast(*args), django(*args)
    assert ours.returncode == theirs.returncode == 2
    assert said in ours.stderr
    assert ours.stderr == theirs.stderr
    assert ours.stdout == b""


def test_help_and_version_are_djangos():
    help_text = fast("--help")
    assert help_text.returncode == 0
    assert help_text.stdout.startswith(b"usage: manage.py parse_report")
    assert b"--max-bytes" in help_text.stdout
    assert b"Parse ARF complaint" in help_text.stdout
    assert fast("--version").stdout == django("--version").stdout


def test_a_settings_option_goes_through_django():
    # --settings names a module Django must import: the call is Django's, and a wrong name
    # fails there as it always did.
    result = fast("--settings", "no.such.settings", samples()[0])
    assert result.returncode != 0
    assert b"No module named 'no'" in result.stderr
