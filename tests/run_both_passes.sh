#!/usr/bin/env bash
# `make test`: the suite's two passes at the same time — every test on SQLite, and the database tests (`e2e or db`)
# on PostgreSQL — each against its own Redis database. Most of a pass waits on its worker, the simulator and
# sockets, so two cores run both in little more than the longer one. The console's browser tests run in the
# SQLite pass (its database reads are tested on both) and save screenshots to test-artifacts/console-sqlite/;
# the PostgreSQL pass fuzzes the API with 50 examples an operation (the SQLite pass with 100; a direct run of the fuzz test
# with 150, to keep both passes within 15 minutes on a 2-core machine half as fast as most). Each pass's output is printed when both are
# over; the exit status fails if either failed.
set -uo pipefail
BIN=${BIN:-.venv/bin}
PG_URL=${PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}
logs=$(mktemp -d)
started=$(date +%s)
MSGRELAY_TEST_DB=sqlite MSGRELAY_TEST_REDIS_URL=redis://127.0.0.1:6379/15 MSGRELAY_ARTIFACTS=test-artifacts/console-sqlite \
    MSGRELAY_FUZZ_EXAMPLES=${MSGRELAY_SQLITE_FUZZ_EXAMPLES:-100} \
    "$BIN/pytest" -q -p no:cacheprovider "$@" >"$logs/sqlite.log" 2>&1 &
sqlite=$!
MSGRELAY_TEST_DB=postgresql MSGRELAY_TEST_PG_URL="$PG_URL" MSGRELAY_TEST_REDIS_URL=redis://127.0.0.1:6379/14 \
    MSGRELAY_FUZZ_EXAMPLES=${MSGRELAY_FUZZ_EXAMPLES:-50} \
    "$BIN/pytest" -q -p no:cacheprovider -m "(e2e or db) and not browser" "$@" >"$logs/postgresql.log" 2>&1 &
postgresql=$!
wait "$sqlite"; sqlite_rc=$?
wait "$postgresql"; postgresql_rc=$?
for pass in sqlite postgresql; do
    rc_var="${pass}_rc"
    echo "================ ${pass} pass (exit ${!rc_var}) ================"
    cat "$logs/$pass.log"
done
echo "both passes: $(( $(date +%s) - started )) s"
rm -rf "$logs"
exit $(( sqlite_rc != 0 || postgresql_rc != 0 ))
