"""`manage.py parse_report` runs without Django's start-up (fbl/report_cli.py) and prints the
same bytes, with the same exit status, as the Django command it stands in for."""

from __future__ import annotations

import os
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


# Three processes whatever the machine's load: fbl/parallel_reports.py picks the count itself.
IN_THREE_PROCESSES = (
    "import sys\n"
    "import fbl.report_cli as cli\n"
    "cli.worker_count = lambda files: 3\n"
    "sys.exit(cli.main(sys.argv[1:]))\n"
)


def in_three_processes(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", IN_THREE_PROCESSES, *args],
        cwd=REPO,
        capture_output=True,
        timeout=300,
        env=service_env(),
    )


@pytest.mark.parametrize("options", [[], ["--json"]])
def test_shared_among_processes_the_output_is_the_same_and_in_order(tmp_path, options):
    require_fixtures()
    corpus = [str(path) for path in sorted(FIXTURES.glob("*/*.eml"))][:60]
    # Unreadable files in the first share and in a later one.
    files = [str(tmp_path / "a.eml"), *corpus[:40], str(tmp_path / "b.eml"), *corpus[40:]]
    ours, theirs = in_three_processes(*files, *options), django(*files, *options)
    assert theirs.returncode == 2
    assert (ours.returncode, ours.stdout, ours.stderr) == (
        theirs.returncode,
        theirs.stdout,
        theirs.stderr,
    )
    assert ours.stderr == b"CommandError: 2 of 62 files could not be read\n"


def test_a_worker_that_fails_has_its_share_parsed_again():
    script = (
        "import os, sys\n"
        "from fbl.parallel_reports import print_in_parallel\n"
        "parent = os.getpid()\n"
        "def run(files, emit):\n"
        "    if os.getpid() != parent and 'c' in files:\n"
        "        raise RuntimeError('worker failed')\n"
        "    for name in files:\n"
        "        emit(name + '\\n')\n"
        "    return len([f for f in files if f in 'bd'])\n"
        "count = print_in_parallel(list('abcdef'), run, sys.stdout.write, 3)\n"
        "print('unreadable', count)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=service_env(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["a", "b", "c", "d", "e", "f", "unreadable", "2"]


def test_shares_are_consecutive_and_cover_every_file(tmp_path):
    from fbl.parallel_reports import _shares

    files = []
    for number, size in enumerate([10, 50_000, 10, 10, 80_000, 10, 10]):
        path = tmp_path / f"{number}.eml"
        path.write_bytes(b"x" * size)
        files.append(str(path))
    files.append(str(tmp_path / "missing.eml"))
    for workers in (1, 2, 3, 20):
        shares = _shares(files, workers)
        assert [f for share in shares for f in share] == files
        assert 1 <= len(shares) <= workers
    assert len(_shares(files, 2)) == 2


def test_a_few_files_are_parsed_in_this_process_and_many_on_at_most_every_cpu():
    from fbl.parallel_reports import MIN_FILES_PER_WORKER, worker_count

    assert worker_count(["x.eml"] * (MIN_FILES_PER_WORKER * 2 - 1)) == 1
    assert 1 <= worker_count(["x.eml"] * 10_000) <= len(os.sched_getaffinity(0))
