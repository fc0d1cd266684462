# Entry points for newcomers, CI and ops. Everything installs itself from nothing and is idempotent.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: install tools dev infra infra-down test faults-long lint format asyncapi bench

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

tools:  ## Java 17 and Maven for the local Kafka broker (installed with apt when missing)
	@bash deploy/local/ensure-tools.sh

dev: install  ## all four services in one process on http://127.0.0.1:8000 (embedded PostgreSQL)
	$(BIN)/pena dev

infra: install tools
	$(BIN)/pena infra up

infra-down: install
	$(BIN)/pena infra down

test: install tools  ## gates (ruff lint + format, mypy, import contracts), starts PostgreSQL + Kafka, checks the AsyncAPI document, runs every test
	$(BIN)/ruff check pena services composition tests bench
	$(BIN)/ruff format --check pena services composition tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/pena infra up
	$(BIN)/pena asyncapi --check
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; rc=0; fi; exit $$rc

faults-long: install tools  ## the fault tests at 5x their CI size (events, kills, fuzz cases); prints their figures
	$(BIN)/pena infra up
	PENA_FAULT_SCALE=5 $(BIN)/pytest -q -p no:cacheprovider tests/faults

lint: install
	$(BIN)/ruff check pena services composition tests bench
	$(BIN)/ruff format --check pena services composition tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff format pena services composition tests bench
	$(BIN)/ruff check --fix pena services composition tests bench

asyncapi: install
	$(BIN)/pena asyncapi

bench: install tools  ## every benchmark at its default size (wrk, the HTTP load generator, installed with apt when missing)
	@bash deploy/local/ensure-tools.sh wrk
	$(BIN)/pena infra up
	$(BIN)/python -m bench.run_all
