"""CSV import: `manage.py import_suppressions FILE --tenant default` into an empty suppression
table, beside raw PostgreSQL COPYs of the same rows.

The file is the generic format (email,reason,scope,created_at): unique addresses, reason
unsubscribe, empty scope (so the reason's default, commercial), an ISO 8601 timestamp.

Baselines, each streamed through psycopg, median of 3:
  (1) `COPY ... FROM STDIN WITH (FORMAT csv, HEADER true)` of the file into a plain table with
      its four columns and no index: reading and storing the text, nothing more.
  (2) COPY of the same rows as the suppression list stores them (the keyed hash computed
      beforehand, the same column values the import writes) into the suppression table itself,
      with its indexes and constraints: the database's own fastest way to put these rows in
      the list, which no import can beat. The target is measured against (2); (1) is printed
      beside it: (2) alone takes many times (1) on this machine.

Then the import is run a second time on the same file: it must add nothing.

Target: import time <= 2 x COPY time (2) (issue 17; the first bar was 3). The import writes on
two connections at once (two lanes); each COPY is one.
"""

from __future__ import annotations

import argparse
import datetime
import os
import time
from pathlib import Path

import common

TARGET_RATIO = 2.0
FIRST_BAR = 3.0
COPY_TABLE = "bench_copy_baseline"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=common.positive_int, default=1_000_000,
                        help="data rows in the CSV (default 1,000,000)")
    parser.add_argument("--csv", type=Path, default=None,
                        help="where to write the CSV (default /tmp/bench_import_ROWS.csv)")
    parser.add_argument("--keep-csv", action="store_true", help="leave the CSV file behind")
    parser.add_argument("--quiet-wait", type=float, default=180,
                        help="seconds to wait for other work on the machine to stop before "
                             "measuring (default 180; 0: do not wait)")
    parser.add_argument("--copy-repeat", type=common.positive_int, default=3,
                        help="COPY runs; the median is the baseline (default 3)")
    return parser.parse_args(argv)


def import_address(i: int) -> str:
    return f"import{i}@example{i % 1000}.com"


def write_csv(path: Path, rows: int) -> int:
    """Write the file; return its size in bytes."""
    base = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    step = 10_000
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("email,reason,scope,created_at\n")
        for start in range(1, rows + 1, step):
            lines = []
            for i in range(start, min(start + step, rows + 1)):
                stamp = (base + datetime.timedelta(seconds=i)).isoformat()
                lines.append(f"{import_address(i)},unsubscribe,,{stamp}\n")
            f.write("".join(lines))
    return path.stat().st_size


def time_copy(path: Path, rows: int) -> float:
    with common.connect() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {COPY_TABLE}")
        conn.execute(f"CREATE TABLE {COPY_TABLE} (email text, reason text, scope text, "
                     f"created_at timestamptz)")
        conn.commit()
        began = time.perf_counter()
        with conn.cursor() as cur, path.open("rb") as f:
            with cur.copy(f"COPY {COPY_TABLE} FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
                while data := f.read(1 << 20):
                    copy.write(data)
        conn.commit()
        elapsed = time.perf_counter() - began
        count = common.table_rows(conn, COPY_TABLE)
        conn.execute(f"DROP TABLE {COPY_TABLE}")
        conn.commit()
    if count != rows:
        raise common.BenchError(f"COPY stored {count} rows, expected {rows}")
    return elapsed


ENTRY_COLUMNS = ("tenant_id, scope, scope_key, address_hash, address, reason, origin, "
                 "evidence_type_id, evidence_id, evidence_note, created_at, updated_at")


def entry_copy_data(rows: int) -> bytes:
    """The file's rows as suppression entries, in COPY's text format (made before timing)."""
    tenant = common.default_tenant_id()
    with common.connect() as conn:
        (evidence_type,) = conn.execute(
            "SELECT id FROM django_content_type WHERE app_label = 'suppression' "
            "AND model = 'importjob'").fetchone()
    base = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    now = datetime.datetime.now(datetime.UTC).isoformat()
    out = []
    for i in range(1, rows + 1):
        address = import_address(i)
        stamp = (base + datetime.timedelta(seconds=i)).isoformat()
        out.append(f"{tenant}\tcommercial\t{tenant}:commercial\t\\\\x"
                   f"{common.python_hash(address).hex()}\t{address}\tunsubscribe\timport\t"
                   f"{evidence_type}\t1\timport #1 line {i + 1}\t{stamp}\t{now}\n")
    return "".join(out).encode()


def time_entry_copy(data: bytes, rows: int) -> float:
    """COPY `data` into (empty) the suppression table; time it, then empty it again."""
    return common.timed_copy_into("suppression_suppression", ENTRY_COLUMNS, data, rows)


def time_import(path: Path) -> tuple[float, dict[str, int], str]:
    return common.timed_import("import_suppressions", path)


def counts() -> dict[str, int]:
    with common.connect() as conn:
        return {table: common.table_rows(conn, table) for table in
                ("suppression_suppression", "suppression_suppressionevent",
                 "compliance_optoutrequest")}


def main(args: argparse.Namespace) -> int:
    path = args.csv or Path(f"/tmp/bench_import_{args.rows}.csv")
    common.log(f"writing {args.rows:,} rows to {path}")
    size = write_csv(path, args.rows)
    try:
        common.create_database()
        common.wait_quiet(max_wait=args.quiet_wait)
        copies = []
        meter = common.CpuMeter()
        meter.start()
        for n in range(args.copy_repeat):
            copies.append(time_copy(path, args.rows))
            common.log(f"COPY run {n + 1}: {copies[-1]:.2f}s")
        other = {"COPY": meter.stop()["other_cores"]}
        plain_seconds = common.median(copies)
        common.log("preparing the rows as entries for COPY into the list")
        entries = entry_copy_data(args.rows)
        common.wait_quiet(max_wait=args.quiet_wait)
        entry_copies = []
        meter = common.CpuMeter()
        meter.start()
        for n in range(args.copy_repeat):
            entry_copies.append(time_entry_copy(entries, args.rows))
            common.log(f"COPY into the list, run {n + 1}: {entry_copies[-1]:.2f}s")
        other["COPY into the list"] = meter.stop()["other_cores"]
        del entries
        copy_seconds = common.median(entry_copies)
        if counts()["suppression_suppression"] != 0:
            raise common.BenchError("the suppression table is not empty before the import")

        common.wait_quiet(max_wait=args.quiet_wait)
        common.log("import_suppressions (first run)")
        probes = [common.cpu_probe()]
        meter = common.CpuMeter()
        meter.start()
        first, outcome, output = time_import(path)
        first_cpu = meter.stop()
        probes.append(common.cpu_probe())
        other["import"] = first_cpu["other_cores"]
        common.log(f"first import: {first:.1f}s; {output.splitlines()[-1]}")
        after_first = counts()
        if outcome != {"added": args.rows, "existing": 0, "bad": 0}:
            raise common.BenchError(f"first import: {outcome}, expected {args.rows} added")

        common.wait_quiet(max_wait=args.quiet_wait)
        common.log("import_suppressions (second run, same file)")
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
        if after_second["suppression_suppression"] != args.rows:
            raise common.BenchError(f"suppression_suppression holds "
                                    f"{after_second['suppression_suppression']:,} rows, "
                                    f"expected {args.rows:,}")
    finally:
        if not args.keep_csv:
            path.unlink(missing_ok=True)

    ratio = first / copy_seconds
    ratio2 = second / copy_seconds
    common.print_summary("CSV import", [
        ("rows", f"{args.rows:,} ({size / 1e6:.1f} MB CSV)"),
        ("(1) COPY of the file, plain table",
         f"{plain_seconds:.2f} s  (median of {len(copies)}: "
         f"{', '.join(f'{c:.2f}' for c in copies)}); {args.rows / plain_seconds:,.0f} rows/s"),
        ("(2) COPY of the entries into the list",
         f"{copy_seconds:.2f} s  (median of {len(entry_copies)}: "
         f"{', '.join(f'{c:.2f}' for c in entry_copies)}); (2)/(1) = "
         f"{copy_seconds / plain_seconds:.1f}"),
        ("import_suppressions (empty table)",
         f"{first:.2f} s; {args.rows / first:,.0f} rows/s; added {outcome['added']:,}"),
        ("ratio import / COPY (2)",
         f"{ratio:.2f}  (target <= {TARGET_RATIO:g}: "
         f"{common.verdict(ratio, TARGET_RATIO, at_most=True)}; first bar {FIRST_BAR:g}: "
         f"{common.verdict(ratio, FIRST_BAR, at_most=True)})"),
        ("information: import / COPY (1)", f"{first / plain_seconds:.1f}"),
        ("re-import (same file)",
         f"{second:.2f} s; added {outcome2['added']}, already listed {outcome2['existing']:,}; "
         f"ratio to (2) {ratio2:.2f} (information)"),
        ("import CPU",
         f"manage.py {first_cpu['workers']:.1f} s, PostgreSQL {first_cpu['postgres']:.1f} s "
         f"(of {first:.1f} s wall)"),
        ("other work on the machine",
         ", ".join(f"{v:.2f} cores during {k}" for k, v in other.items())
         + f" (of {os.cpu_count()}; figures are unreliable when this is high)"),
        ("CPU speed probe", f"{probes[0]:.0f} ms before, {probes[1]:.0f} ms after the import "
                            f"(common.cpu_probe; higher = slower machine)"),
        ("rows afterwards",
         f"suppressions {after_second['suppression_suppression']:,} = --rows: ok; events "
         f"{after_second['suppression_suppressionevent']:,}, opt-out requests "
         f"{after_second['compliance_optoutrequest']:,}"),
    ])
    return 0


if __name__ == "__main__":
    common.run_main(main, parse_args)
