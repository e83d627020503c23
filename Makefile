# qcflow developer commands; `make help` lists them.
#   make test PYTEST_ARGS="-x -k receipt"     pass options to pytest
#   make bench BENCH_ARGS="--db postgres --scale M"   benchmark options (python -m bench.run --help)

PYTEST_ARGS ?=
BENCH_ARGS ?= --db sqlite --scale S --scenario all

.DEFAULT_GOAL := help
.PHONY: help setup run run-centre test test-slow bench clean

help: ## Show this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  make \1\t/' | expand -t 20

setup: ## Install system packages (if missing), .venv and translations
	scripts/setup

run: ## Migrate, load demo data, start web server + scheduler on http://127.0.0.1:5000/
	scripts/run

run-centre: ## The same as a regional quality-control centre (instance/centre/) on http://127.0.0.1:5001/
	scripts/run-centre

# pytest exits 5 when it collects no tests; that is not a failure.
test: setup ## Run the whole test suite (QCFLOW_TEST_DATABASE_URL selects PostgreSQL)
	@rc=0; .venv/bin/python -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests collected"; rc=0; fi; \
	exit $$rc

test-slow: setup ## Run only the long variants (tests marked slow: R1 at 200k plans, long API fuzzing in-process and through gunicorn, 60 s load)
	QCFLOW_RUN_SLOW=1 .venv/bin/python -m pytest -m slow $(PYTEST_ARGS)

bench: setup ## Benchmarks P1–P12 against their raw lower bound (BENCH_ARGS, default SQLite scale S, all)
	.venv/bin/python -m bench.run $(BENCH_ARGS) --json bench/results/latest.json

clean: ## Remove caches and coverage output (keeps .venv and the database)
	find . -path ./.venv -prune -o -type d -name __pycache__ -exec rm -rf {} +
	rm -rf .pytest_cache .hypothesis .coverage .coverage.* htmlcov
