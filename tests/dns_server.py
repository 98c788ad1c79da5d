"""A private DNS server for tests: dnsmasq on a free loopback port, serving the TXT records given.

    with dns_server_running({"s1._domainkey.example.test": "v=DKIM1; k=rsa; p=..."}) as server:
        resolver = fbl.dkim.resolver_for([server.nameserver], timeout=1)

or, in a test, the `dns_server` fixture (tests/fbl/conftest.py): a started server with no records;
`dns_server.set_txt(name, text)` publishes a record (restarting dnsmasq, on the same port).

dnsmasq answers every name itself (`local=/#/`): a name it has no record for is NXDOMAIN, never
forwarded anywhere. It runs with --no-daemon (dnsmasq's debug mode): in the foreground, with no
pid file, and without switching to the `nobody` user when started as root.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import pytest

from tests.support import require_program

LOOPBACK = "127.0.0.1"


class DnsServerStartError(RuntimeError):
    """dnsmasq did not come up; the message carries its output."""


@dataclass
class DnsServer:
    directory: Path
    port: int
    records: dict[str, str] = field(default_factory=dict)  # name -> TXT text
    process: subprocess.Popen | None = None

    @property
    def nameserver(self) -> str:
        """The address for fbl.dkim.resolver_for: "127.0.0.1:PORT"."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "dnsmasq.log"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def set_txt(self, name: str, text: str) -> None:
        """Publish one TXT record at `name` (replacing any there); restarts a running server."""
        self.records[name] = text
        if self.running:
            self.restart()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, timeout: float = 10) -> None:
        self._write_conf()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    require_program("dnsmasq"),
                    f"--conf-file={self.directory / 'dnsmasq.conf'}",
                    "--no-daemon",
                    "--no-resolv",
                    "--no-hosts",
                    f"--listen-address={LOOPBACK}",
                    "--bind-interfaces",
                    f"--port={self.port}",
                    "--log-facility=-",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_answering(timeout)

    def stop(self, *, timeout: float = 10) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _write_conf(self) -> None:
        lines = ["local=/#/"]
        for name, text in self.records.items():
            if not name or any(c in name for c in ',"\\\n\r'):
                raise ValueError(f"a DNS name the conf file cannot hold: {name!r}")
            lines.append(f"txt-record={name},{','.join(_quoted(s) for s in _strings(text))}")
        (self.directory / "dnsmasq.conf").write_text("\n".join(lines) + "\n")

    def _wait_until_answering(self, timeout: float) -> None:
        query = dns.message.make_query("ready.dns-server-test.invalid", dns.rdatatype.TXT)
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DnsServerStartError(
                    self._failure(f"dnsmasq exited {self.process.returncode}")
                )
            try:
                dns.query.udp(query, LOOPBACK, port=self.port, timeout=0.05)
                dns.query.tcp(query, LOOPBACK, port=self.port, timeout=1)
                return
            except (OSError, dns.exception.DNSException) as exc:
                last = str(exc)
            time.sleep(0.01)
        self.stop()
        raise DnsServerStartError(self._failure(f"no answer within {timeout}s ({last})"))

    def _failure(self, what: str) -> str:
        conf = (self.directory / "dnsmasq.conf").read_text()
        return (
            f"private dnsmasq on port {self.port} did not start: {what}\n"
            f"--- dnsmasq.conf ---\n{conf}--- output ---\n{self.log()[-4000:] or '(empty)'}"
        )


def _strings(text: str) -> list[str]:
    """A TXT record's character-strings: at most 255 bytes each (RFC 1035 3.3.14)."""
    data = text.encode("ascii")
    return [data[i : i + 255].decode() for i in range(0, len(data), 255)] or [""]


def _quoted(string: str) -> str:
    return '"' + string.replace("\\", "\\\\").replace('"', '\\"') + '"'


def free_port() -> int:
    """A loopback port free for both UDP and TCP (dnsmasq listens on both)."""
    for _attempt in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((LOOPBACK, 0))
            port = udp.getsockname()[1]
            with socket.socket() as tcp, contextlib.suppress(OSError):
                tcp.bind((LOOPBACK, port))
                return port
    raise RuntimeError("no loopback port free for both UDP and TCP")


def start_dns_server(records: Mapping[str, str] | None = None) -> DnsServer:
    """A started server serving `records` (name -> TXT text); raises DnsServerStartError."""
    require_program("dnsmasq")
    for _attempt in range(3):  # another process may take the free port before dnsmasq binds it
        server = DnsServer(
            directory=Path(tempfile.mkdtemp(prefix="dnsmasq-test-")),
            port=free_port(),
            records=dict(records or {}),
        )
        try:
            server.start()
            return server
        except DnsServerStartError as exc:
            stop_dns_server(server)
            if "Address already in use" not in str(exc):
                raise
    raise DnsServerStartError("no free loopback port for dnsmasq after 3 attempts")


def stop_dns_server(server: DnsServer) -> None:
    """Stop dnsmasq and delete its directory."""
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)


@contextlib.contextmanager
def dns_server_running(records: Mapping[str, str] | None = None) -> Iterator[DnsServer]:
    server = start_dns_server(records)
    try:
        yield server
    finally:
        stop_dns_server(server)


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """A started private DNS server with no records; `set_txt` adds some. Stopped afterwards."""
    with dns_server_running() as server:
        yield server
