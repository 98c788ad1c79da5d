#!/usr/bin/env python3
"""A relay's local mirror of the suppression list: a hash export, kept current from the change feed.

Standard library only (Python 3.9+); copy this one file to the relay. See mirror.md beside it.

    # once: load the file `manage.py export_suppressions --format hashes --stream S` wrote
    suppression_mirror.py init suppressions.hashes --db /var/lib/mirror/suppressions.sqlite3

    # every minute (or with --follow 60): apply the change feed from the stored cursor
    SUPPRESSION_API_KEY=... suppression_mirror.py sync --db ... --url https://compliance.example.com

    # before sending: exit status 0 clear, 1 suppressed, 2 error
    ADDRESS_HASH_KEY=... suppression_mirror.py check pat@example.org --db ...

The mirror stores keyed hashes only (HMAC-SHA256 of the normalised address with the service's
ADDRESS_HASH_KEY), in a SQLite file. Each hash is kept with the entries that put it there
(tenant, scope, reason), so that lifting one entry does not clear an address another entry still
blocks. Hashes loaded from an export come without their entries; when one of those is lifted the
mirror asks the service (GET /api/v1/suppressions/?address=...) what still applies, and keeps the
hash when it cannot tell (erased address): a mirror errs towards not sending.

Which changes block the mirrored stream follows suppression/rules.py (tests compare the two):
a transactional stream is blocked only by `global` entries with a "never mail" reason; a
commercial stream by `global`, `commercial` and its own `stream:S` entries, of its tenant or
shared. Topic entries block single topics, which a mirror of a whole stream does not track.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import random
import sqlite3
import sys
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FORMAT = "suppression-hashes/1"
NEVER_MAIL = frozenset({"hard_bounce", "invalid", "erasure", "legal"})
# suppression/rules.py PRECEDENCE: an entry that gets a second reason keeps the weightier one.
PRECEDENCE = (
    "legal",
    "erasure",
    "hard_bounce",
    "invalid",
    "objection",
    "complaint",
    "unsubscribe",
    "manual",
    "soft_bounce",
)
UNKNOWN = "?"  # tenant, scope and reason of a hash loaded from an export
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entry (
    hash BLOB NOT NULL, tenant TEXT NOT NULL, scope TEXT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (hash, tenant, scope)
) WITHOUT ROWID;
"""


class MirrorError(Exception):
    """Something the operator must fix: a bad file, a refused key, an unreachable service."""


# --- addresses -----------------------------------------------------------------------------------


def normalise(address: str) -> str:
    """The service's normal form for the addresses relays send to: trimmed, NFC, lower-cased.

    Limits: the service validates syntax and converts internationalised domains with IDNA 2008
    (UTS 46); this uses Python's built-in IDNA 2003 codec, which differs for a few characters
    (ß, ς, joiners: "straße.de" becomes "strasse.de" here but xn--strae-oqa.de there). Plain
    ASCII addresses, nearly all mail, normalise exactly alike. Check a non-ASCII domain through
    the API (GET /api/v1/suppressions/check) when it matters. Raises ValueError.
    """
    text = unicodedata.normalize("NFC", unicodedata.normalize("NFC", address.strip()).lower())
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"not an address: {address!r}")
    if not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}"


def address_hash(address: str, key: bytes) -> bytes:
    """HMAC-SHA256 of the normalised address, as the service computes it."""
    return hmac.digest(key, normalise(address).encode("utf-8"), "sha256")


# --- which entries block the mirrored stream ----------------------------------------------------


@dataclass(frozen=True)
class Stream:
    tenant: str  # slug, or * for a mirror of every tenant
    slug: str  # or * for a mirror of every entry
    kind: str  # commercial, transactional or all

    def blocked_by(self, *, tenant: str | None, scope: str, reason: str) -> bool:
        """Does an active entry (tenant None: shared) of `scope` and `reason` block this stream?"""
        if self.kind == "all":
            return self.tenant == "*" or tenant in (None, self.tenant)
        if tenant is not None and tenant != self.tenant:
            return False
        if self.kind == "transactional":
            return scope == "global" and reason in NEVER_MAIL
        return scope in ("global", "commercial") or scope == f"stream:{self.slug}"


def weightier(a: str, b: str) -> str:
    if a not in PRECEDENCE or b not in PRECEDENCE:
        return b
    return a if PRECEDENCE.index(a) <= PRECEDENCE.index(b) else b


# --- the store -----------------------------------------------------------------------------------


class Mirror:
    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")  # checks keep reading while sync writes
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT name, value FROM meta"))

    def stream(self) -> Stream:
        meta = self.meta()
        if "cursor" not in meta:
            raise MirrorError("the mirror is empty: load an export with `init` first")
        return Stream(meta["tenant"], meta["stream"], meta["kind"])

    def load_export(self, lines) -> tuple[dict[str, str], int]:
        """Replace the mirror with an export file's content; return its header and hash count."""
        header = parse_header(next(iter(lines), ""))
        count = 0
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("DELETE FROM entry")
            self.db.execute("DELETE FROM meta")
            batch = []
            for number, line in enumerate(lines, start=2):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                try:
                    digest = bytes.fromhex(text)
                except ValueError:
                    digest = b""
                if len(digest) != 32:
                    raise MirrorError(f"line {number}: not a 64-digit hex hash: {text[:80]!r}")
                batch.append((digest, UNKNOWN, UNKNOWN, UNKNOWN))
                if len(batch) >= 10_000:
                    count += self._insert(batch)
            count += self._insert(batch)
            self.db.executemany("INSERT INTO meta VALUES (?, ?)", sorted(header.items()))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return header, count

    def _insert(self, batch: list) -> int:
        self.db.executemany("INSERT OR IGNORE INTO entry VALUES (?, ?, ?, ?)", batch)
        done = len(batch)
        batch.clear()
        return done

    def is_suppressed(self, digest: bytes) -> bool:
        found = self.db.execute("SELECT 1 FROM entry WHERE hash = ? LIMIT 1", (digest,))
        return found.fetchone() is not None

    def hashes(self) -> int:
        return self.db.execute("SELECT count(DISTINCT hash) FROM entry").fetchone()[0]


def parse_header(line: str) -> dict[str, str]:
    """The export's first line: `# suppression-hashes/1 cursor=T.I tenant=T stream=S kind=K ...`."""
    words = line.lstrip("#").split()
    if not line.startswith("#") or not words or words[0] != FORMAT:
        raise MirrorError(f"not a {FORMAT} export (first line {line.strip()[:80]!r})")
    fields = dict(word.partition("=")[::2] for word in words[1:])
    missing = {"cursor", "tenant", "stream", "kind"} - fields.keys()
    if missing:
        raise MirrorError(f"the export header lacks {', '.join(sorted(missing))}")
    return fields


# --- the change feed -----------------------------------------------------------------------------


@dataclass
class Service:
    """The compliance service's API, with retries for what may pass (network, 5xx, 429)."""

    url: str
    api_key: str
    timeout: float = 30.0
    max_attempts: int = 8
    backoff: float = 1.0
    max_backoff: float = 60.0
    sleep: Callable[[float], None] = time.sleep

    def get(self, path: str, params: dict[str, Any]) -> Any:
        url = f"{self.url.rstrip('/')}{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(
            url, headers={"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        )
        for attempt in range(1, self.max_attempts + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    return json.load(answer)
            except urllib.error.HTTPError as exc:
                if exc.code not in RETRY_STATUSES:
                    detail = exc.read().decode("utf-8", "replace")[:300]
                    raise MirrorError(f"GET {path} answered {exc.code}: {detail}") from exc
                problem, wait = f"HTTP {exc.code}", _retry_after(exc)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                problem, wait = str(getattr(exc, "reason", exc)), None
            if attempt == self.max_attempts:
                raise MirrorError(f"GET {path} failed {attempt} times; last: {problem}")
            if wait is None:
                # Exponential backoff with jitter, so that many relays do not retry in step.
                wait = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                wait *= random.uniform(0.8, 1.2)
            print(f"GET {path}: {problem}; retrying in {wait:.1f}s", file=sys.stderr)
            self.sleep(wait)
        raise AssertionError("unreachable")

    def active_entries(self, address: str) -> list[dict[str, Any]]:
        page = self.get("/api/v1/suppressions/", {"address": address, "active": "true"})
        return page["results"]


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    try:
        return max(0.0, float(exc.headers.get("Retry-After", "")))
    except ValueError:
        return None


def sync(mirror: Mirror, service: Service, *, limit: int = 1000) -> int:
    """Apply the change feed from the stored cursor until it is empty; return changes applied.

    Each page and its cursor are stored in one transaction: an interrupted sync resumes where
    it stopped and applies nothing twice.
    """
    stream = mirror.stream()
    cursor = mirror.meta()["cursor"]
    applied = 0
    while True:
        page = service.get("/api/v1/suppressions/changes", {"since": cursor, "limit": limit})
        if not page["changes"]:
            return applied
        mirror.db.execute("BEGIN IMMEDIATE")
        try:
            for change in page["changes"]:
                apply_change(mirror, stream, change, service)
            mirror.db.execute("UPDATE meta SET value = ? WHERE name = 'cursor'", (page["next"],))
            mirror.db.execute("COMMIT")
        except BaseException:
            mirror.db.execute("ROLLBACK")
            raise
        applied += len(page["changes"])
        cursor = page["next"]


def apply_change(mirror: Mirror, stream: Stream, change: dict[str, Any], service: Service) -> None:
    """One change-feed item: `added`, `reason`, `lifted` or `erased` for one entry."""
    digest = bytes.fromhex(change["address_hash"])
    tenant = change["tenant"] or "*"
    key = (digest, tenant, change["scope"])
    if change["action"] == "erased":
        return  # the address is gone, its hash and its blocking stay
    db = mirror.db
    reason = change["reason"]
    if change["action"] == "reason":
        row = db.execute(
            "SELECT reason FROM entry WHERE hash = ? AND tenant = ? AND scope = ?", key
        ).fetchone()
        if row:
            reason = weightier(row[0], reason)  # the service's row keeps the weightier one
    blocks = change["action"] != "lifted" and stream.blocked_by(
        tenant=change["tenant"], scope=change["scope"], reason=reason
    )
    if blocks:
        db.execute("INSERT OR REPLACE INTO entry VALUES (?, ?, ?, ?)", (*key, reason))
        return
    db.execute("DELETE FROM entry WHERE hash = ? AND tenant = ? AND scope = ?", key)
    _settle_unknown(mirror, stream, digest, change.get("address"), service)


def _settle_unknown(
    mirror: Mirror, stream: Stream, digest: bytes, address: str | None, service: Service
) -> None:
    """When the only thing left behind a hash is the export's unknown entry, ask the service
    which of the address's entries still apply. Without the address (erased), keep the hash."""
    left = mirror.db.execute("SELECT tenant, scope FROM entry WHERE hash = ?", (digest,)).fetchall()
    if left != [(UNKNOWN, UNKNOWN)] or not address:
        return
    mirror.db.execute("DELETE FROM entry WHERE hash = ?", (digest,))
    for entry in service.active_entries(address):
        if bytes.fromhex(entry["address_hash"]) != digest:
            continue
        if stream.blocked_by(tenant=entry["tenant"], scope=entry["scope"], reason=entry["reason"]):
            mirror.db.execute(
                "INSERT OR REPLACE INTO entry VALUES (?, ?, ?, ?)",
                (digest, entry["tenant"] or "*", entry["scope"], entry["reason"]),
            )


# --- command line --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--db", required=True, help="the mirror's SQLite file")
    commands = parser.add_subparsers(dest="command", required=True)

    init = commands.add_parser("init", parents=[store], help="replace the mirror with an export")
    init.add_argument("export", help="a file of `export_suppressions --format hashes`")

    sync_ = commands.add_parser("sync", parents=[store], help="apply the feed from the cursor")
    sync_.add_argument("--url", required=True, help="the service, e.g. https://compliance.example")
    sync_.add_argument("--api-key", default=os.environ.get("SUPPRESSION_API_KEY"))
    sync_.add_argument("--follow", type=float, help="keep syncing, this many seconds apart")
    sync_.add_argument("--max-attempts", type=int, default=8, help="per request (default 8)")
    sync_.add_argument("--backoff", type=float, default=1.0, help="first retry wait (s)")
    sync_.add_argument("--timeout", type=float, default=30.0, help="per request (s)")

    check = commands.add_parser("check", parents=[store], help="exit 0 if every address is clear")
    check.add_argument("addresses", nargs="+")
    check.add_argument("--hash-key", default=os.environ.get("ADDRESS_HASH_KEY"))

    args = parser.parse_args(argv)
    try:
        mirror = Mirror(args.db)
    except sqlite3.Error as exc:
        print(f"cannot open {args.db}: {exc}", file=sys.stderr)
        return 2
    try:
        return _run(args, mirror)
    except MirrorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        mirror.close()


def _run(args: argparse.Namespace, mirror: Mirror) -> int:
    if args.command == "init":
        try:
            with open(args.export, encoding="utf-8") as lines:
                header, count = mirror.load_export(lines)
        except OSError as exc:
            raise MirrorError(f"cannot read {args.export}: {exc}") from exc
        print(
            f"loaded {count} hashes of {header['tenant']}/{header['stream']}; "
            f"cursor {header['cursor']}"
        )
        return 0
    if args.command == "sync":
        if not args.api_key:
            raise MirrorError("no API key: pass --api-key or set SUPPRESSION_API_KEY")
        service = Service(
            args.url,
            args.api_key,
            timeout=args.timeout,
            max_attempts=args.max_attempts,
            backoff=args.backoff,
        )
        while True:
            applied = sync(mirror, service)
            print(f"applied {applied} changes; cursor {mirror.meta()['cursor']}", flush=True)
            if not args.follow:
                return 0
            time.sleep(args.follow)
    if not args.hash_key:
        raise MirrorError("no hash key: pass --hash-key or set ADDRESS_HASH_KEY")
    mirror.stream()  # refuses an empty mirror
    key = args.hash_key.encode()
    suppressed = False
    for address in args.addresses:
        try:
            listed = mirror.is_suppressed(address_hash(address, key))
        except ValueError as exc:
            raise MirrorError(str(exc)) from exc
        suppressed |= listed
        print(f"{address}\t{'suppressed' if listed else 'clear'}")
    return 1 if suppressed else 0


if __name__ == "__main__":
    sys.exit(main())
