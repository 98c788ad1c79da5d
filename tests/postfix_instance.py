"""A private Postfix instance for tests: its own configuration, queue and log, on a loopback port.

    with postfix_instance(
        main_cf={"relay_domains": "example.org", "transport_maps": "inline:{ example.org=fbl: }"},
        master_cf=["fbl unix - n n - - pipe", "  flags=Rq user=nobody argv=/bin/cat"],
    ) as mta:
        with mta.smtp() as client:
            client.mail("news@shop.example")
            code, text = client.rcpt("pat@example.org")
        mta.wait_for_log(r"status=sent")

or, in a test, the `postfix` fixture (`from tests.postfix_instance import postfix`), a factory
taking the same arguments whose instances are stopped after the test.

Each instance lives in a fresh directory under /var/tmp and runs as `postfix -c DIR start`,
without touching /etc/postfix or the machine's own instance. What it takes (checked facts,
/work/shared/notes/postfix-in-tests.md): `maillog_file` must start with one of
`maillog_file_prefixes` (default /var and /dev/stdout), so the instance lives under /var/tmp;
every parent of `data_directory` must be traversable by the postfix user; every service runs
unchrooted; start-up errors reach only the maillog, which a failed start puts in its exception.
Only root can start Postfix this way: `require_root_postfix()` skips (fails under CI) otherwise.
"""

from __future__ import annotations

import contextlib
import os
import pty
import pwd
import re
import select
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import require, require_program

LOOPBACK = "127.0.0.1"

# Every service Postfix needs to receive mail and hand it to a transport (master.cf(5) columns:
# service type private unpriv chroot wakeup maxproc command). Chroot is off everywhere: a chroot
# would need copies of /etc files inside the private queue directory.
_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixStartError(RuntimeError):
    """The instance did not come up; the message carries its maillog."""


@dataclass
class PostfixInstance:
    directory: Path
    port: int
    main_cf: dict[str, str] = field(default_factory=dict)
    host: str = LOOPBACK

    @property
    def config_dir(self) -> Path:
        return self.directory / "etc"

    @property
    def maillog_path(self) -> Path:
        return self.directory / "maillog"

    def maillog(self) -> str:
        try:
            return self.maillog_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def smtp(self, *, timeout: float = 30) -> smtplib.SMTP:
        """A connected SMTP client that has said EHLO (use it as a context manager)."""
        client = smtplib.SMTP(self.host, self.port, timeout=timeout)
        client.ehlo("client.example.net")
        return client

    def wait_for_log(self, pattern: str, *, timeout: float = 30) -> re.Match[str]:
        """The first maillog match of the regex `pattern`, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.maillog())
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{pattern!r} not in the maillog after {timeout}s:\n{self.maillog()[-4000:]}"
                )
            time.sleep(0.1)

    def postfix(self, *args: str, timeout: float = 60) -> tuple[int, str]:
        """`postfix -c CONFIG_DIR ARGS` (start, stop, flush, reload ...): (exit status, output).

        Run on a pseudo-terminal: errors found before the instance's own log daemon runs (a bad
        main.cf, an address it cannot bind) are lost with maillog_file set, but the postfix
        command also writes them to its standard error when that is a terminal.
        """
        return _run_on_terminal(
            [require_program("postfix"), "-c", str(self.config_dir), *args], timeout=timeout
        )

    def master_pid(self) -> int | None:
        try:
            pid = int((self.directory / "queue" / "pid" / "master.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if _alive(pid) else None


def require_root_postfix() -> str:
    """The postfix program, when this process may start private instances (root, postfix user)."""
    program = require_program("postfix")
    require(os.geteuid() == 0, "root (to start a private Postfix instance)")
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        require(False, "the postfix user")
    return program


def start_postfix(
    *,
    main_cf: Mapping[str, str] | None = None,
    master_cf: Sequence[str] = (),
    timeout: float = 30,
) -> PostfixInstance:
    """Create and start an instance; raise PostfixStartError (with its maillog) if it does not
    answer SMTP within `timeout` seconds. `main_cf` adds to or overrides the base settings;
    `master_cf` lines are appended to the service table as written."""
    require_root_postfix()
    for _attempt in range(3):  # another process may take the free port before Postfix binds it
        instance = _create(main_cf or {}, master_cf)
        try:
            _start(instance, timeout)
            return instance
        except PostfixStartError as exc:
            stop_postfix(instance)
            if "Address already in use" not in str(exc):
                raise
    raise PostfixStartError("no free loopback port for Postfix after 3 attempts")


def stop_postfix(instance: PostfixInstance, *, timeout: float = 20) -> None:
    """Stop the instance (every process of it) and delete its directory."""
    pid = instance.master_pid()
    if pid is not None:
        instance.postfix("stop", timeout=timeout)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            instance.postfix("abort")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
    shutil.rmtree(instance.directory, ignore_errors=True)


@contextlib.contextmanager
def postfix_instance(**kwargs) -> Iterator[PostfixInstance]:
    instance = start_postfix(**kwargs)
    try:
        yield instance
    finally:
        stop_postfix(instance)


@pytest.fixture
def postfix():
    """A factory: postfix(main_cf={...}, master_cf=[...]) -> a started PostfixInstance."""
    started: list[PostfixInstance] = []

    def make(**kwargs) -> PostfixInstance:
        instance = start_postfix(**kwargs)
        started.append(instance)
        return instance

    yield make
    for instance in started:
        stop_postfix(instance)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _create(main_cf: Mapping[str, str], master_cf: Sequence[str]) -> PostfixInstance:
    directory = Path(tempfile.mkdtemp(prefix="postfix-test-", dir="/var/tmp"))
    directory.chmod(0o755)  # the postfix user must reach data_directory through it
    for sub in ("etc", "queue", "data"):
        (directory / sub).mkdir(mode=0o755)
    postfix_user = pwd.getpwnam("postfix")
    os.chown(directory / "data", postfix_user.pw_uid, postfix_user.pw_gid)
    instance = PostfixInstance(directory=directory, port=free_port())
    settings = {
        "compatibility_level": "3.6",
        "queue_directory": str(directory / "queue"),
        "data_directory": str(directory / "data"),
        "maillog_file": str(instance.maillog_path),
        "mail_owner": "postfix",
        "setgid_group": "postdrop",
        "inet_interfaces": LOOPBACK,
        "inet_protocols": "ipv4",
        "myhostname": "mta.postfix-test.invalid",
        "mydomain": "postfix-test.invalid",
        "mydestination": "",
        "mynetworks": "127.0.0.0/8",
        "relay_domains": "",
        "alias_maps": "",
        "alias_database": "",
        "local_recipient_maps": "",
        "biff": "no",
        # Loopback clients have no useful reverse DNS; do not wait for it.
        "smtpd_peername_lookup": "no",
        "smtpd_banner": "$myhostname ESMTP",
        **main_cf,
    }
    instance.main_cf = settings
    (directory / "etc" / "main.cf").write_text(
        "".join(f"{name} = {value}\n" for name, value in settings.items())
    )
    smtpd = f"{LOOPBACK}:{instance.port} inet  n       -       n       -       -       smtpd\n"
    extra = "".join(line.rstrip("\n") + "\n" for line in master_cf)
    (directory / "etc" / "master.cf").write_text(smtpd + _SERVICES + extra)
    return instance


def _start(instance: PostfixInstance, timeout: float) -> None:
    status, output = instance.postfix("start")
    if status != 0:
        raise PostfixStartError(_failure(instance, f"postfix start exited {status}:\n{output}"))
    began = time.monotonic()
    last = ""
    while time.monotonic() < began + timeout:
        if time.monotonic() > began + 2 and instance.master_pid() is None:
            raise PostfixStartError(_failure(instance, "the master process is not running"))
        try:
            with socket.create_connection((instance.host, instance.port), timeout=2) as sock:
                banner = sock.recv(512).decode(errors="replace")
                if banner.startswith("220 "):
                    with contextlib.suppress(OSError):
                        sock.sendall(b"QUIT\r\n")
                    return
                last = banner
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise PostfixStartError(
        _failure(instance, f"no SMTP banner on port {instance.port} within {timeout}s ({last})")
    )


def _failure(instance: PostfixInstance, what: str) -> str:
    return (
        f"private Postfix in {instance.directory} did not start: {what}\n"
        f"--- main.cf ---\n{(instance.config_dir / 'main.cf').read_text()}"
        f"--- maillog ({instance.maillog_path}) ---\n{instance.maillog()[-6000:] or '(empty)'}"
    )


def _run_on_terminal(argv: list[str], *, timeout: float) -> tuple[int, str]:
    """Run `argv` with its output on a pseudo-terminal; (exit status, output)."""
    primary, secondary = pty.openpty()
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, close_fds=True
        )
    finally:
        os.close(secondary)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                process.kill()
                break
            ready, _, _ = select.select([primary], [], [], 0.1)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not chunk:
                break
            output += chunk
        status = process.wait(timeout=5)
    finally:
        os.close(primary)
    return status, output.decode(errors="replace").replace("\r\n", "\n")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
