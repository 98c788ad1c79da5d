"""A real HTTP server on loopback that plays a downstream system: it records what it is sent and
answers as each test tells it (a status, a delay, a closed connection, a redirect)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Behaviour:
    """How a path answers: `status` codes to give in turn (the last repeats), `delay` seconds
    before answering, `close` to drop the connection unanswered, `location` for redirects,
    `refuse_first` to refuse one request by what it carries."""

    status: list[int] = field(default_factory=lambda: [200])
    delay: float = 0.0
    close: bool = False
    location: str = ""
    # Answer 500 to the first request whose body holds this text (then as `status` says).
    refuse_first: str = ""


class Receiver:
    def __init__(self):
        self.received: list[Received] = []
        self.behaviours: dict[str, Behaviour] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length).decode()
                behaviour = receiver.behaviours.get(self.path, Behaviour())
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status = (
                        behaviour.status.pop(0)
                        if len(behaviour.status) > 1
                        else (behaviour.status[0])
                    )
                    if behaviour.refuse_first and behaviour.refuse_first in body:
                        behaviour.refuse_first = ""
                        status = 500
                if behaviour.delay:
                    time.sleep(behaviour.delay)
                if behaviour.close:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(status)
                if behaviour.location:
                    self.send_header("Location", behaviour.location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[Received]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = self.at(path)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"{path} received {len(self.at(path))} requests, expected {count}")
