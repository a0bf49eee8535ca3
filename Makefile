# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-fast lint install migrate serve clean bench cluster cluster-stop

$(BIN)/activate: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(BIN)/activate

install: $(BIN)/activate ## Create .venv and install the pinned requirements

migrate: install ## Bring the database (SQLite under instance/ unless DATABASE_URL) to the latest schema
	$(FLASK) db upgrade

run: migrate ## Install, migrate and serve on http://$(HOST):$(PORT)
	$(BIN)/gunicorn --config gunicorn.conf.py --bind $(HOST):$(PORT) wsgi:app

test: install ## Run the whole suite on both cores (PostgreSQL at 127.0.0.1:5432 and SQLite)
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

test-fast: install ## The inner loop: no live processes, browser or broker; SQLite and pure tests
	$(BIN)/pytest -n 2 -m "not live and not browser and not broker" -k "not postgresql" $(PYTEST_ARGS)

lint: install ## The pre-commit checks on every file: ruff (lint + format), whitespace, YAML/TOML
	$(BIN)/pre-commit run --all-files --show-diff-on-failure

clean:
	rm -rf $(VENV) bench/.dlt-venv .pytest_cache .ruff_cache

bench: install ## Benchmarks against PostgreSQL (BENCH_SCALE=large for 1M/10M, BENCH_DLT=0 without the dlt peer); results in bench/results/
	command -v wrk >/dev/null || (apt-get install -y wrk || (apt-get update && apt-get install -y wrk))
	$(BIN)/python -m bench.run

cluster: ## A primary, a streaming standby, Redis, two app nodes behind HAProxy, the relay (docs/scaling.md)
	ops/cluster.sh start

cluster-stop: ## Stop everything `make cluster` started and remove it
	ops/cluster.sh stop
