# msgrelay: `make demo` and `make test` install what they need into .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: demo test test-sqlite test-postgresql bench chaos install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/msgrelay demo $(ARGS)

# The whole suite on SQLite and, at the same time, its database tests on PostgreSQL (each pass against the real
# Redis, its own worker and simulator); `make test-sqlite` / `make test-postgresql` run one pass.
test: $(STAMP)
	bash tests/install_browser.sh
	BIN=$(BIN) PG_URL=$(PG_URL) bash tests/run_both_passes.sh $(ARGS)

test-sqlite: $(STAMP)
	bash tests/install_browser.sh
	MSGRELAY_TEST_DB=sqlite $(BIN)/pytest -q $(ARGS)

test-postgresql: $(STAMP)
	MSGRELAY_TEST_DB=postgresql MSGRELAY_TEST_PG_URL=$(PG_URL) $(BIN)/pytest -q -m "(e2e or db) and not browser" $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_submit
	MSGRELAY_BENCH_DB=postgresql MSGRELAY_BENCH_PG_URL=$(PG_URL) $(BIN)/python -m benchmarks.bench_reports
	MSGRELAY_BENCH_DB=postgresql MSGRELAY_BENCH_PG_URL=$(PG_URL) $(BIN)/python -m benchmarks.bench_call 300
	MSGRELAY_BENCH_DB=postgresql MSGRELAY_BENCH_PG_URL=$(PG_URL) $(BIN)/python -m benchmarks.bench_send 200000
	MSGRELAY_BENCH_DB=postgresql MSGRELAY_BENCH_PG_URL=$(PG_URL) $(BIN)/python -m benchmarks.bench_send 1000000
	$(BIN)/python -m benchmarks.bench_send 200000
	MSGRELAY_BENCH_DB=postgresql MSGRELAY_BENCH_PG_URL=$(PG_URL) $(BIN)/python -m benchmarks.bench_webhooks 1000000
	MSGRELAY_BENCH_DB=postgresql MSGRELAY_BENCH_PG_URL=$(PG_URL) $(BIN)/python -m benchmarks.bench_console 1000000 10000

# The chaos run of record: 100,000 recipients on PostgreSQL under kills and faults; prints the table.
chaos: $(STAMP)
	MSGRELAY_CHAOS_PG_URL=$(PG_URL) $(BIN)/python -m benchmarks.chaos $(ARGS)

clean:
	rm -rf .msgrelay-demo .pytest_cache build *.egg-info test-artifacts
