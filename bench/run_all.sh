#!/usr/bin/env bash
# Run the suppression benchmarks with their defaults, one after another (each also waits for
# the shared benchmark lock). Exits non-zero if any of them failed; a missed target is printed
# as MISSED in its summary and is not a failure.
#
#   bench/run_all.sh            # from the project root or anywhere
set -u
cd "$(dirname "$0")/.."
PY=.venv/bin/python
status=0
run() {
    local limit=$1; shift
    echo "=== $* (at most ${limit}s)"
    timeout --signal=TERM --kill-after=30 "$limit" "$PY" "$@"
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "=== FAILED ($rc): $*"
        status=1
    fi
}
run 1800 bench/batch_check.py
run 1200 bench/single_check.py
run 1200 bench/import_csv.py
run 1200 bench/ingest_reports.py
exit "$status"
