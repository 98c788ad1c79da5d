"""A private DNS server for tests: dnsmasq on a free loopback port, serving the records given.

    with dns_server_running({"s1._domainkey.example.test": "v=DKIM1; k=rsa; p=..."}) as server:
        resolver = fbl.dkim.resolver_for([server.nameserver], timeout=1)

or, in a test, the `dns_server` fixture (tests/fbl/conftest.py): a started server with no records;
`dns_server.set_txt(name, text)` publishes a record (restarting dnsmasq, on the same port).

Besides TXT records (one text, or a list of texts for several records at one name) it serves
MX records (`mx={name: [(preference, host), ...]}`, `set_mx`), addresses (`addresses={name:
IP}`, `set_address`) and answers SERVFAIL for every name under a domain given in `servfail`
(`set_servfail`). `publish(...)` sets several kinds at once with one restart.

dnsmasq answers every name itself (`local=/#/`): a name it has no record for is NXDOMAIN, never
forwarded anywhere, except names under a `servfail` domain, which it forwards to a small
upstream on loopback, in this process, that answers every query SERVFAIL. It runs with
--no-daemon (dnsmasq's debug mode): in the foreground, with no pid file, and without switching
to the `nobody` user when started as root.
"""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
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
    records: dict[str, str | Sequence[str]] = field(default_factory=dict)  # name -> TXT text(s)
    process: subprocess.Popen | None = None
    mx: dict[str, Sequence[tuple[int, str]]] = field(default_factory=dict)  # name -> (pref, host)
    addresses: dict[str, str] = field(default_factory=dict)  # name -> IPv4 or IPv6 address
    servfail: set[str] = field(default_factory=set)  # domains whose every name is SERVFAIL
    _upstream: _ServfailUpstream | None = field(default=None, repr=False)

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

    def set_txt(self, name: str, text: str | Sequence[str]) -> None:
        """Publish one TXT record at `name` (a list: several), replacing any there; restarts a
        running server."""
        self.publish(txt={name: text})

    def set_mx(self, name: str, hosts: Sequence[tuple[int, str]]) -> None:
        """Publish MX records (preference, host) at `name`, replacing any there."""
        self.publish(mx={name: hosts})

    def set_address(self, name: str, address: str) -> None:
        """Publish an A (or, for an IPv6 address, AAAA) record at `name`."""
        self.publish(addresses={name: address})

    def set_servfail(self, domain: str) -> None:
        """Answer SERVFAIL for `domain` and every name under it."""
        self.publish(servfail=[domain])

    def publish(
        self,
        *,
        txt: Mapping[str, str | Sequence[str]] | None = None,
        mx: Mapping[str, Sequence[tuple[int, str]]] | None = None,
        addresses: Mapping[str, str] | None = None,
        servfail: Iterable[str] = (),
    ) -> None:
        """Add records of any kind, replacing those at the same names; one restart."""
        self.records.update(txt or {})
        self.mx.update(mx or {})
        self.addresses.update(addresses or {})
        self.servfail.update(servfail)
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
        for name, texts in self.records.items():
            for text in [texts] if isinstance(texts, str) else texts:
                strings = ",".join(_quoted(s) for s in _strings(text))
                lines.append(f"txt-record={_name(name)},{strings}")
        for name, hosts in self.mx.items():
            lines.extend(f"mx-host={_name(name)},{_name(h)},{int(p)}" for p, h in hosts)
        for name, address in self.addresses.items():
            lines.append(f"host-record={_name(name)},{ipaddress.ip_address(address)}")
        if self.servfail and self._upstream is None:
            self._upstream = _ServfailUpstream()
        for domain in sorted(self.servfail):
            # dnsmasq forwards these to an upstream that answers SERVFAIL, and passes that on.
            lines.append(f"server=/{_name(domain)}/{LOOPBACK}#{self._upstream.port}")
        (self.directory / "dnsmasq.conf").write_text("\n".join(lines) + "\n")

    @property
    def upstream_port(self) -> int | None:
        """The loopback port of the SERVFAIL upstream (in this process), if there is one."""
        return None if self._upstream is None else self._upstream.port

    def close(self) -> None:
        """Stop dnsmasq and the SERVFAIL upstream, for good."""
        self.stop()
        if self._upstream is not None:
            self._upstream.close()
            self._upstream = None

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


class _ServfailUpstream:
    """An upstream DNS server on loopback that answers every query SERVFAIL, as a resolver
    does when a zone's servers are broken or its DNSSEC signatures do not validate."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind((LOOPBACK, 0))
        self.socket.settimeout(0.1)
        self.port = self.socket.getsockname()[1]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="servfail-upstream", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                data, peer = self.socket.recvfrom(4096)
                query = dns.message.from_wire(data)
            except TimeoutError:
                continue
            except dns.exception.DNSException:
                continue
            except OSError:
                return
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.SERVFAIL)
            self.socket.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self.socket.close()


def _name(name: str) -> str:
    if not name or any(c in name for c in ',"\\\n\r/#'):
        raise ValueError(f"a DNS name the conf file cannot hold: {name!r}")
    return name


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
    """Stop dnsmasq (and any SERVFAIL upstream) and delete its directory."""
    server.close()
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
