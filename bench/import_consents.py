"""Consent import: `manage.py import_consents FILE --tenant default` into an empty ledger, beside a
raw PostgreSQL COPY of the same rows into consent_consentrecord.

The file has every column: web-form grants of unique addresses to the `marketing` stream, each
with its time, IP, user agent, page, form, one of three wordings, notice version and
jurisdiction.

Baseline, streamed through psycopg, median of 3: COPY of the same rows as the ledger stores them
(the keyed hash and the import key computed beforehand, the texts' ids, the same column values
the import writes) into consent_consentrecord itself, with its indexes and constraints: the
database's own fastest way to put these records in the ledger. The import does more (it checks
every row, and writes each address's current state, consent_consentstate, too).

Then the import is run a second time on the same file: it must add nothing.

Target: import time <= 3 x COPY time.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
from pathlib import Path

import common

TARGET_RATIO = 3.0
WORDINGS = [f"Yes, send me the newsletter and offers by e-mail (version {n})." for n in range(3)]
BASE = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
HEADER = (
    "address,purpose,action,basis,method,collected_at,ip,user_agent,page_url,form_id,wording,"
    "privacy_notice_version,jurisdiction\n"
)
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
PAGE_URL = "https://example.com/newsletter/signup"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=common.positive_int, default=1_000_000,
                        help="data rows in the CSV (default 1,000,000)")
    parser.add_argument("--csv", type=Path, default=None,
                        help="where to write the CSV (default /tmp/bench_consents_ROWS.csv)")
    parser.add_argument("--keep-csv", action="store_true", help="leave the CSV file behind")
    parser.add_argument("--quiet-wait", type=float, default=60,
                        help="seconds to wait for other work on the machine to stop before "
                             "measuring (default 60; 0: do not wait)")
    parser.add_argument("--copy-repeat", type=common.positive_int, default=3,
                        help="COPY runs; the median is the baseline (default 3)")
    return parser.parse_args(argv)


def address(i: int) -> str:
    return f"consent{i}@example{i % 1000}.com"


def collected_at(i: int) -> str:
    return (BASE + datetime.timedelta(seconds=i)).isoformat()


def ip(i: int) -> str:
    return f"198.51.100.{i % 250 + 1}"


def write_csv(path: Path, rows: int) -> int:
    """Write the file; return its size in bytes."""
    step = 10_000
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        for start in range(1, rows + 1, step):
            f.write("".join(
                f'{address(i)},marketing,grant,consent,web_form,{collected_at(i)},{ip(i)},'
                f'"{USER_AGENT}",{PAGE_URL},footer,"{WORDINGS[i % 3]}",2024-01,DE\n'
                for i in range(start, min(start + step, rows + 1))
            ))
    return path.stat().st_size


def import_key(tenant_id: int, digest: bytes, i: int) -> str:
    """compliance/consent/importing.py's import key, as its docstring documents it."""
    parts = (str(tenant_id), digest.hex(), "marketing", "granted", "consent", "web_form",
             collected_at(i))
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def store_texts(tenant_id: int) -> list[int]:
    """The three wordings as stored texts (the import finds and reuses them)."""
    ids = []
    with common.connect() as conn:
        for body in WORDINGS:
            digest = hashlib.sha256(body.encode()).hexdigest()
            (text_id,) = conn.execute(
                "INSERT INTO consent_consenttext (tenant_id, sha256, body, created_at) "
                "VALUES (%s, %s, %s, now()) RETURNING id", (tenant_id, digest, body)).fetchone()
            ids.append(text_id)
        conn.commit()
    return ids


RECORD_COLUMNS = (
    "actor_label, via, tenant_id, stream_id, address, address_hash, action, basis, method, "
    "jurisdiction, occurred_at, recorded_at, ip, user_agent, page_url, form_id, text_id, "
    "privacy_notice_version, cause, import_key"
)


def record_copy_data(rows: int, tenant_id: int, stream_id: int, text_ids: list[int]) -> bytes:
    """The file's rows as ledger records, in COPY's text format (made before timing)."""
    now = datetime.datetime.now(datetime.UTC).isoformat()
    out = []
    for i in range(1, rows + 1):
        digest = common.python_hash(address(i))
        out.append(
            f"command:import_consents\tcommand\t{tenant_id}\t{stream_id}\t{address(i)}\t"
            f"\\\\x{digest.hex()}\tgranted\tconsent\tweb_form\tDE\t{collected_at(i)}\t{now}\t"
            f"{ip(i)}\t{USER_AGENT}\t{PAGE_URL}\tfooter\t{text_ids[i % 3]}\t2024-01\t\t"
            f"{import_key(tenant_id, digest, i)}\n"
        )
    return "".join(out).encode()


def time_record_copy(data: bytes, rows: int) -> float:
    """COPY `data` into (empty) the ledger; time it, then empty it again."""
    return common.timed_copy_into("consent_consentrecord", RECORD_COLUMNS, data, rows)


def time_import(path: Path) -> tuple[float, dict[str, int], str]:
    return common.timed_import("import_consents", path)


def counts() -> dict[str, int]:
    with common.connect() as conn:
        return {table: common.table_rows(conn, table) for table in
                ("consent_consentrecord", "consent_consentstate", "consent_consenttext")}


def check_sample(tenant_id: int, rows: int) -> None:
    """A few imported records carry the documented import key and their evidence."""
    with common.connect() as conn:
        for i in sorted({1, rows // 2 or 1, rows}):
            digest = common.python_hash(address(i))
            found = conn.execute(
                "SELECT import_key, host(ip), page_url, text_id IS NOT NULL "
                "FROM consent_consentrecord WHERE address_hash = %s", (digest,)).fetchone()
            expected = (import_key(tenant_id, digest, i), ip(i), PAGE_URL, True)
            if found != expected:
                raise common.BenchError(f"row {i}: stored {found}, expected {expected}")


def main(args: argparse.Namespace) -> int:
    path = args.csv or Path(f"/tmp/bench_consents_{args.rows}.csv")
    common.log(f"writing {args.rows:,} rows to {path}")
    size = write_csv(path, args.rows)
    try:
        common.create_database()
        tenant_id = common.default_tenant_id()
        with common.connect() as conn:
            (stream_id,) = conn.execute(
                "SELECT id FROM compliance_stream WHERE tenant_id = %s AND slug = 'marketing'",
                (tenant_id,)).fetchone()
        text_ids = store_texts(tenant_id)
        common.log("preparing the rows as records for COPY into the ledger")
        data = record_copy_data(args.rows, tenant_id, stream_id, text_ids)
        common.wait_quiet(max_wait=args.quiet_wait)
        copies = []
        meter = common.CpuMeter()
        meter.start()
        for n in range(args.copy_repeat):
            copies.append(time_record_copy(data, args.rows))
            common.log(f"COPY into the ledger, run {n + 1}: {copies[-1]:.2f}s")
        other = {"COPY": meter.stop()["other_cores"]}
        del data
        copy_seconds = common.median(copies)

        common.wait_quiet(max_wait=args.quiet_wait)
        common.log("import_consents (first run)")
        meter = common.CpuMeter()
        meter.start()
        first, outcome, output = time_import(path)
        first_cpu = meter.stop()
        other["import"] = first_cpu["other_cores"]
        common.log(f"first import: {first:.1f}s; {output.splitlines()[-1]}")
        after_first = counts()
        if outcome != {"added": args.rows, "existing": 0, "bad": 0}:
            raise common.BenchError(f"first import: {outcome}, expected {args.rows} added")
        check_sample(tenant_id, args.rows)

        common.wait_quiet(max_wait=args.quiet_wait)
        common.log("import_consents (second run, same file)")
        meter = common.CpuMeter()
        meter.start()
        second, outcome2, output2 = time_import(path)
        other["re-import"] = meter.stop()["other_cores"]
        common.log(f"re-import: {second:.1f}s; {output2.splitlines()[-1]}")
        after_second = counts()
        if outcome2 != {"added": 0, "existing": args.rows, "bad": 0}:
            raise common.BenchError(f"re-import: {outcome2}, expected 0 added")
        if after_second != after_first:
            raise common.BenchError(f"re-import changed the tables: {after_first} -> "
                                    f"{after_second}")
        expected = {"consent_consentrecord": args.rows, "consent_consentstate": args.rows,
                    "consent_consenttext": len(WORDINGS)}
        if after_second != expected:
            raise common.BenchError(f"tables hold {after_second}, expected {expected}")
    finally:
        if not args.keep_csv:
            path.unlink(missing_ok=True)

    ratio = first / copy_seconds
    common.print_summary("consent import", [
        ("rows", f"{args.rows:,} ({size / 1e6:.1f} MB CSV)"),
        ("COPY of the records into the ledger",
         f"{copy_seconds:.2f} s  (median of {len(copies)}: "
         f"{', '.join(f'{c:.2f}' for c in copies)}); {args.rows / copy_seconds:,.0f} rows/s"),
        ("import_consents (empty ledger)",
         f"{first:.2f} s; {args.rows / first:,.0f} rows/s; added {outcome['added']:,}"),
        ("ratio import / COPY",
         f"{ratio:.2f}  (target <= {TARGET_RATIO:g}: "
         f"{common.verdict(ratio, TARGET_RATIO, at_most=True)})"),
        ("re-import (same file)",
         f"{second:.2f} s; added {outcome2['added']}, already recorded "
         f"{outcome2['existing']:,}; ratio to COPY {second / copy_seconds:.2f} (information)"),
        ("import CPU",
         f"manage.py {first_cpu['workers']:.1f} s, PostgreSQL {first_cpu['postgres']:.1f} s "
         f"(of {first:.1f} s wall)"),
        ("other work on the machine",
         ", ".join(f"{v:.2f} cores during {k}" for k, v in other.items())
         + f" (of {os.cpu_count()}; figures are unreliable when this is high)"),
        ("rows afterwards",
         f"records {after_second['consent_consentrecord']:,}, states "
         f"{after_second['consent_consentstate']:,}, texts "
         f"{after_second['consent_consenttext']}: ok"),
    ])
    return 0


if __name__ == "__main__":
    common.run_main(main, parse_args)
