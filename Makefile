# Entry points for newcomers, CI and ops. Everything installs itself from nothing and is idempotent.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements-dev.lock | sha1sum | cut -c1-12)
PYTEST_ARGS ?=
# uv pip compile: one lock for every platform (markers), Python 3.11 as the floor, sha256 of every file.
# uv prefers the versions already in the output file, so `make lock` after editing pyproject.toml
# changes only what the edit needs; `make lock-upgrade` moves everything to the newest allowed versions.
UV := $(BIN)/uv
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --quiet --custom-compile-command "make lock"
LOCKS := requirements.lock:  requirements-dev.lock:--extra=local,--extra=dev,--constraint=requirements.lock
# uv uses its own CA roots unless told; the system bundle also trusts an intercepting proxy when there is one
export SSL_CERT_FILE ?= $(wildcard /etc/ssl/certs/ca-certificates.crt)

.PHONY: install tools dev infra infra-down test faults-long lint format asyncapi bench lock lock-upgrade lock-check image

# exact versions from the lock (hash-checked), then the project itself without dependencies
$(STAMP): pyproject.toml requirements-dev.lock
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

tools:  ## Java 17 and Maven for the local Kafka broker, podman for the image test (apt, when missing)
	@bash deploy/local/ensure-tools.sh kafka podman

lock: install  ## recompile the lock files after editing dependencies in pyproject.toml
	@for spec in $(LOCKS); do out=$${spec%%:*}; extras=$$(echo $${spec#*:} | tr , ' '); \
	  $(UV) pip compile pyproject.toml $$extras -o $$out $(LOCK_FLAGS) && echo "wrote $$out"; done

lock-upgrade: install  ## newest versions pyproject.toml allows, in both lock files
	@for spec in $(LOCKS); do out=$${spec%%:*}; extras=$$(echo $${spec#*:} | tr , ' '); \
	  $(UV) pip compile pyproject.toml $$extras -o $$out $(LOCK_FLAGS) --upgrade && echo "wrote $$out"; done

lock-check: install  ## fails when a lock file does not match pyproject.toml (needs the package index)
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; rc=0; \
	for spec in $(LOCKS); do out=$${spec%%:*}; extras=$$(echo $${spec#*:} | tr , ' '); \
	  cp $$out $$tmp/$$out; $(UV) pip compile pyproject.toml $$extras -o $$tmp/$$out $(LOCK_FLAGS) || exit 1; \
	  if diff -u $$out $$tmp/$$out; then echo "$$out matches pyproject.toml"; \
	  else echo "$$out is stale: run make lock" >&2; rc=1; fi; done; exit $$rc

image:  ## the production image from deploy/Dockerfile with podman (base: localhost/pena-base:bookworm)
	@bash deploy/local/ensure-tools.sh podman
	deploy/local/build-image.sh

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

lint: install lock-check
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
