# `make run` and `make test` need only Python 3.11 and make: the first call creates .venv, and
# tools/devstack/ starts whatever DATABASE_URL, REDIS_URL and KAFKA_BOOTSTRAP_SERVERS don't point at.
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PYTEST_ARGS ?=
CHAOS_ARGS ?=
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.DEFAULT_GOAL := help
.PHONY: help venv run test schemathesis chaos clean-devstack bench-relay

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## create .venv and install requirements.txt

# The stamp is newer than requirements.txt once they are installed; editing the file reinstalls.
$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

run: $(VENV)/.installed ## start services, migrate, load demo data, run web/worker/beat/... until Ctrl-C (SHOP_TOPOLOGY=services: a database and processes per context)
	$(PY) -m tools.devstack run

test: $(VENV)/.installed ## check import boundaries, types and that no migration is missing, then the engine's own tests, then the shop's in each topology (PYTEST_ARGS="-k saga -x")
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DATABASE_URL=postgres://unused/for-mypy REDIS_URL=redis://unused KAFKA_BOOTSTRAP_SERVERS=unused:9092 $(VENV)/bin/mypy
	$(PY) -m tools.devstack exec -- sh -c '$(PY) manage.py makemigrations --check --dry-run && DJANGO_SETTINGS_MODULE=saga.tests.settings $(PY) manage.py makemigrations --check --dry-run && $(PY) -m pytest --ds=saga.tests.settings saga/tests && $(PY) -m pytest $(PYTEST_ARGS) && SHOP_TOPOLOGY=services $(PY) -m pytest $(PYTEST_ARGS)'

# make test runs the same test with 30 examples per operation and a fixed seed.
SCHEMATHESIS_MAX_EXAMPLES ?= 500
schemathesis: $(VENV)/.installed ## schemathesis over /api/schema/, all checks, many examples, a new seed (SCHEMATHESIS_MAX_EXAMPLES=500 SCHEMATHESIS_SEED=...)
	$(PY) -m tools.devstack exec -- sh -c 'SCHEMATHESIS_MAX_EXAMPLES=$(SCHEMATHESIS_MAX_EXAMPLES) SCHEMATHESIS_SEED=$${SCHEMATHESIS_SEED:-$$(date +%s)} $(PY) -m pytest tests/schema --timeout 7200'

chaos: $(VENV)/.installed ## the whole stack as processes under faults, then every invariant checked (CHAOS_ARGS="--duration 600 --seed 7 --clients 16 --topology services")
	$(PY) -m tools.devstack exec -- $(PY) -m tools.chaos $(CHAOS_ARGS)

clean-devstack: ## delete .devstack/ (the embedded PostgreSQL's data, logs)
	rm -rf .devstack

BENCH_ARGS ?=
.PHONY: bench
bench: $(VENV)/.installed ## every benchmark, monolith and services topologies (9 minutes on a quiet 2-core machine), the table, reports/bench-*.json (BENCH_ARGS="--sagas 500 --grown 100000")
	$(PY) -m tools.devstack exec -- $(PY) -m tools.bench $(BENCH_ARGS)

bench-relay: $(VENV)/.installed ## measure the outbox relay's throughput (messages/s)
	$(PY) -m tools.devstack exec -- sh -c '$(PY) manage.py migrate -v0 && $(PY) -m tools.bench.relay_throughput $(BENCH_MESSAGES)'

.PHONY: fuzz-engine
fuzz-engine: $(VENV)/.installed ## the engine's model-based test, longer (FUZZ_EXAMPLES=5000 FUZZ_SEED=...)
	$(PY) -m tools.devstack exec -- env FUZZ_EXAMPLES=$(or $(FUZZ_EXAMPLES),5000) FUZZ_SEED=$(FUZZ_SEED) \
		$(PY) -m pytest -q tests/saga/test_engine_model.py $(PYTEST_ARGS)
