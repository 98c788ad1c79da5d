"""Report mail through a real Postfix: a `pipe` transport hands each message to
`manage.py ingest_mail`, set up as docs/relays/postfix.md describes.

What an operator sees: a feedback-loop complaint, DKIM-signed by a configured feedback loop and
sent by SMTP to the report address, is stored (source pipe, kind arf, processed, trusted for the
loop's signing domain) and suppresses its recipient for commercial mail. With the database
unreachable the command exits 75 (EX_TEMPFAIL): Postfix logs the delivery as deferred and keeps
the message in its queue, neither bouncing nor dropping it.

The command runs as the unprivileged pipe user with the bare environment pipe(8) gives it, so a
wrapper script (as in the docs) sets the settings it needs and names every path in full.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from compliance.models import Stream
from fbl.models import InboundMessage
from suppression import rules
from suppression.selectors import is_suppressed
from tests.fbl.messages import require_fixtures
from tests.fbl.signing import dkim_sign, key_record, new_key
from tests.postfix_instance import postfix  # noqa: F401 - the fixture
from tests.support import ROOT, require, require_program, same_database_env

pytestmark = pytest.mark.integration

PIPE_USER = "nobody"
REPORT_DOMAIN = "reports.example"
REPORT_ADDRESS = f"fbl@{REPORT_DOMAIN}"
FBL_DOMAIN = "fbl.isp.example"  # the feedback loop's DKIM signing domain
SENDER = f"feedback@{FBL_DOMAIN}"
# arf-22.eml: a Hotmail-style complaint about mail to kijitora@example.com.
FIXTURE = "arf/arf-22.eml"
COMPLAINANT = "kijitora@example.com"


# --- the pipe user's Python and its wrapper ------------------------------------------------------


@dataclass(frozen=True)
class PipePython:
    """How the pipe user runs this project's code: a command prefix and the environment it
    needs on top of the settings."""

    command: tuple[str, ...]
    env: Mapping[str, str]


def _pipe_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PIPE_USER)
    except KeyError:
        require(False, f"the user {PIPE_USER!r} (the pipe transport's user)")
        raise


def _runs_as_pipe_user(candidate: PipePython) -> str | None:
    """None if the pipe user can start ingest_mail with `candidate`, else why not."""
    user = _pipe_user()
    env = {"DJANGO_SETTINGS_MODULE": "compliance.settings", **candidate.env}
    try:
        done = subprocess.run(
            [*candidate.command, str(ROOT / "manage.py"), "ingest_mail", "--help"],
            cwd="/",
            env=env,
            user=user.pw_uid,
            group=user.pw_gid,
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except OSError as exc:
        return f"{candidate.command[0]}: {exc}"
    if done.returncode != 0:
        return f"{' '.join(candidate.command)} exited {done.returncode}: {done.stderr[-500:]}"
    return None


def _soabi(python: str) -> str:
    return subprocess.run(
        [python, "-S", "-c", "import sysconfig; print(sysconfig.get_config_var('SOABI'))"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()


@pytest.fixture(scope="module")
def pipe_python() -> PipePython:
    """This interpreter if the pipe user can run it. An interpreter installed under a home
    directory closed to other users (pyenv under a 0700 /root) cannot be; then the system's
    interpreter of the same version and ABI (so the virtualenv's compiled packages load), with
    -S and the virtualenv's packages as its only path beyond the standard library."""
    candidates = [PipePython((sys.executable,), {})]
    version = "{}.{}".format(*sys.version_info)
    system = shutil.which(f"python{version}", path="/usr/bin:/bin")  # the pipe's own PATH
    same_abi = system and _soabi(system) == sysconfig.get_config_var("SOABI")
    if same_abi and sys.prefix != sys.base_prefix:
        packages = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
        candidates.append(
            PipePython(
                (system, "-S"),
                {"PYTHONPATH": os.pathsep.join(packages), "PYTHONDONTWRITEBYTECODE": "1"},
            )
        )
    reasons = []
    for candidate in candidates:
        reason = _runs_as_pipe_user(candidate)
        if reason is None:
            return candidate
        reasons.append(reason)
    require(False, f"a Python that the user {PIPE_USER!r} can run this project with ({reasons})")
    raise AssertionError("unreachable")


@pytest.fixture
def pipe_home() -> Iterator[Path]:
    """A directory for the wrapper script, readable by the pipe user (every parent is)."""
    directory = Path(tempfile.mkdtemp(prefix="ingest-pipe-", dir="/var/tmp"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def pipe_database_url(pipe_home) -> Iterator[str]:
    """DATABASE_URL of the running test's database, usable by the pipe user.

    PostgreSQL: the same URL. SQLite writes a journal file beside the database under the name
    it was opened by, so the pipe user needs a directory it may write as well as the file: a
    hard link to the test database in a directory of its own gives it both without opening the
    repository directory to it. (The two names keep separate journals, which matters only for
    recovering from a crash in the middle of a write.)"""
    url = same_database_env()["DATABASE_URL"]
    if connection.vendor != "sqlite":
        yield url
        return
    database = Path(connection.settings_dict["NAME"])
    user = _pipe_user()
    directory = pipe_home / "db"
    directory.mkdir(mode=0o755)
    os.chown(directory, user.pw_uid, user.pw_gid)
    link = directory / database.name
    try:
        os.link(database, link)
    except OSError as exc:  # EXDEV: the test database is on another file system than /var/tmp
        pytest.fail(f"cannot link {database} into {directory} for the pipe user: {exc}")
    mode = database.stat().st_mode & 0o7777
    database.chmod(mode | 0o666)
    try:
        yield f"sqlite:///{link}"
    finally:
        database.chmod(mode)
        link.unlink(missing_ok=True)


def write_wrapper(directory: Path, python: PipePython, settings_env: Mapping[str, str]) -> Path:
    """The pipe's command: export the service's settings, then run ingest_mail with the
    arguments Postfix passes."""
    env = {
        "DJANGO_SETTINGS_MODULE": "compliance.settings",
        "DEBUG": "true",
        **python.env,
        **settings_env,
    }
    lines = ["#!/bin/sh", *(f"export {name}={shlex.quote(value)}" for name, value in env.items())]
    command = [*python.command, str(ROOT / "manage.py"), "ingest_mail"]
    lines.append(f'exec {shlex.join(command)} "$@"')
    script = directory / "ingest-mail"
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o755)
    return script


def report_relay(wrapper: Path) -> dict:
    """postfix(...) arguments: mail to the report address goes through the pipe to `wrapper`."""
    return {
        "main_cf": {
            "relay_domains": REPORT_DOMAIN,
            "transport_maps": f"inline:{{ {REPORT_DOMAIN}=fbl-ingest: }}",
            "relay_recipient_maps": f"inline:{{ {REPORT_ADDRESS}=ok }}",
        },
        "master_cf": [
            "fbl-ingest unix  -       n       n       -       -       pipe",
            f"  flags=DRX user={PIPE_USER} null_sender=",
            f"  argv={wrapper} --sender ${{sender}} --recipient ${{original_recipient}}",
        ],
    }


# --- the report ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider_key():
    return new_key()


@pytest.fixture
def signed_report(provider_key) -> bytes:
    """The fixture complaint as a feedback loop sends it: CRLF line ends, DKIM-signed."""
    raw = (require_fixtures() / FIXTURE).read_bytes()
    return dkim_sign(re.sub(rb"\r?\n", b"\r\n", raw), provider_key, domain=FBL_DOMAIN)


def send(mta, raw: bytes) -> None:
    with mta.smtp() as client:
        assert client.sendmail(SENDER, [REPORT_ADDRESS], raw) == {}


# --- tests ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_signed_complaint_piped_by_postfix_is_stored_and_suppresses_commercial_mail(
    postfix,  # noqa: F811 - the fixture imported above
    dns_server,
    provider_key,
    signed_report,
    pipe_python,
    pipe_home,
    pipe_database_url,
    default_tenant,
):
    dns_server.set_txt(f"s1._domainkey.{FBL_DOMAIN}", key_record(provider_key))
    wrapper = write_wrapper(
        pipe_home,
        pipe_python,
        {
            "DATABASE_URL": pipe_database_url,
            "ADDRESS_HASH_KEY": settings.ADDRESS_HASH_KEY,
            "FBL_SENDER_DOMAINS": "isp.example",
            "DKIM_NAMESERVERS": dns_server.nameserver,
            "DKIM_DNS_TIMEOUT": "2",
        },
    )
    mta = postfix(**report_relay(wrapper))

    send(mta, signed_report)
    mta.wait_for_log(rf"to=<{re.escape(REPORT_ADDRESS)}>, relay=fbl-ingest,.*status=sent")

    message = InboundMessage.objects.get()
    assert (message.source, message.kind, message.feedback_type, message.status) == (
        InboundMessage.Source.PIPE,
        "arf",
        "abuse",
        InboundMessage.Status.PROCESSED,
    ), message.note
    assert message.dkim_domain == FBL_DOMAIN, message.dkim_results
    assert (message.envelope_sender, message.envelope_recipient) == (SENDER, REPORT_ADDRESS)
    # What Postfix handed over: its own headers on top, LF line ends; the signature held.
    stored = message.raw()
    assert stored.startswith(
        f"Return-Path: <{SENDER}>\nDelivered-To: {REPORT_ADDRESS}\nReceived: ".encode()
    )
    assert b"\r\n" not in stored
    assert f"d={FBL_DOMAIN} s=s1: pass" in message.dkim_results

    marketing, transactional = (
        Stream.objects.get(tenant=default_tenant, slug=slug)
        for slug in ("marketing", "transactional")
    )
    verdict = is_suppressed(stream=marketing, address=COMPLAINANT)
    assert (verdict.suppressed, verdict.reason, verdict.scope) == (
        True,
        rules.COMPLAINT,
        rules.COMMERCIAL,
    )
    assert not is_suppressed(stream=transactional, address=COMPLAINANT).suppressed


def test_with_the_database_unreachable_postfix_defers_and_keeps_the_message(
    postfix,  # noqa: F811 - the fixture imported above
    signed_report,
    pipe_python,
    pipe_home,
):
    postcat = require_program("postcat")
    wrapper = write_wrapper(
        pipe_home,
        pipe_python,
        {"DATABASE_URL": "postgres://postgres@127.0.0.1:1/x", "DB_CONNECT_TIMEOUT": "1"},
    )
    mta = postfix(**report_relay(wrapper))

    send(mta, signed_report)
    deferred = mta.wait_for_log(
        rf"(?m)^.* ([0-9A-F]+): to=<{re.escape(REPORT_ADDRESS)}>, relay=fbl-ingest,.*"
        r"status=deferred \(temporary failure\. Command output: (.*)\)$"
    )
    queue_id, output = deferred.group(1), deferred.group(2)
    assert "cannot store the message now" in output

    log = mta.maillog()
    assert "status=bounced" not in log
    assert "sender non-delivery notification" not in log
    assert f"{queue_id}: removed" not in log
    # The log line comes first; the queue manager then moves the file to the deferred queue.
    deferred_queue = mta.directory / "queue" / "deferred"
    deadline = time.monotonic() + 20
    while not (queued := [p.name for p in deferred_queue.rglob("*") if p.is_file()]):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert queued == [queue_id]
    headers = subprocess.run(
        [postcat, "-c", str(mta.config_dir), "-hq", queue_id],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert "Message-ID: <CAT0-NNE-000000000000000022@CAT0-RRR.example.org>" in headers
