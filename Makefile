# reelpolicy: two commands on a fresh machine (Python 3.11+ and make): make up, make test.
# `make help` lists every target; a target's `## ` comment is its line there.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_PREFERENCE := only-system
export XDG_RUNTIME_DIR ?= /tmp/reelpolicy-runtime-$(shell id -u)

.DEFAULT_GOAL := help
.PHONY: help up test test-fast lint format hooks bench sync clean chaos fuzz contracts contracts-release

# The benchmarks (bench/<name>.py); `make bench-<name>` runs one, ARGS=... passes options.
BENCHMARKS := engine outbox_relay registry_import registry_import_floor policy_change \
	rules_replicas registry_latency simulate_concurrency notify webhook_client

help: ## this list
	@echo "usage: make <target> [VAR=value ...]"
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z][a-z_-]*:[^#]*## / {printf "  %-30s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)
	@echo "benchmarks (make bench-<name> [ARGS=...]; each prints its options with ARGS=--help):"
	@for b in $(BENCHMARKS); do \
		printf "  %-30s %s\n" "bench-$$b" "$$(sed -n '1s/^"""//p' bench/$$b.py)"; \
	done

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv

$(VENV)/.synced: $(UV) pyproject.toml uv.lock $(wildcard libs/*/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml)
	$(UV) sync --all-packages --frozen
	touch $@

sync: $(VENV)/.synced ## install the tools and the workspace into .venv (from uv.lock)

up: sync ## the whole platform on embedded PostgreSQL + broker (Ctrl-C stops it)
	mkdir -p $(XDG_RUNTIME_DIR)
	$(VENV)/bin/reelpolicy-dev up

# The workspace's packages: deptry checks each one's declared dependencies against its imports.
PACKAGES := $(patsubst %/pyproject.toml,%,\
	$(wildcard libs/*/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml))

lint: sync ## ruff, mypy strict, deptry (declared dependencies), import-linter (the layers)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@for p in $(PACKAGES); do \
		echo "deptry $$p"; $(VENV)/bin/deptry --config $$p/pyproject.toml $$p/src || exit 1; \
	done
	$(VENV)/bin/lint-imports

contracts: sync ## regenerate contracts/ (JSON Schemas, asyncapi.yaml) from libs/contracts
	$(VENV)/bin/python -m reelpolicy_contracts.export contracts

contracts-release: sync ## contracts + copy schemas of new event types/versions into contracts/released/
	$(VENV)/bin/python -m reelpolicy_contracts.export contracts --release

format: sync ## let ruff format and fix the code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

hooks: sync ## install the git pre-commit hooks (.pre-commit-config.yaml: make lint's checks)
	$(VENV)/bin/pre-commit install

test: lint ## lint + the whole test suite (what .ci/run calls)
	mkdir -p $(XDG_RUNTIME_DIR)
	$(VENV)/bin/pytest

# The unit tests: no test that needs a server (marked in tests/conftest.py), no
# process-level run (e2e, chaos, fuzz).
test-fast: sync ## the unit tests only: no servers, no e2e/chaos/fuzz (under a minute)
	$(VENV)/bin/pytest -m "not servers and not e2e and not chaos and not fuzz"

MINUTES ?= 5
chaos: sync ## the chaos run: SEED=... (default: a random one, printed) MINUTES=... (default 5)
	mkdir -p $(XDG_RUNTIME_DIR)
	$(VENV)/bin/python tests/chaos/run.py --minutes $(MINUTES) $(if $(SEED),--seed $(SEED))

# make test runs tests/fuzz with a fixed seed and few examples; this runs it longer.
EXAMPLES ?= 100
fuzz: sync ## the OpenAPI fuzz suite: SEED=... (default: random, printed) EXAMPLES=... (default 100)
	mkdir -p $(XDG_RUNTIME_DIR)
	FUZZ_SEED=$(or $(SEED),$$RANDOM$$RANDOM) FUZZ_EXAMPLES=$(EXAMPLES) \
		$(VENV)/bin/pytest tests/fuzz -m fuzz -p no:cacheprovider

bench: $(addprefix bench-,$(BENCHMARKS)) ## every benchmark below, one after the other

.PHONY: $(addprefix bench-,$(BENCHMARKS))
$(addprefix bench-,$(BENCHMARKS)): bench-%: sync
	$(VENV)/bin/python bench/$*.py $(ARGS)

clean: ## remove .venv, .tools and the dev/test data
	rm -rf $(VENV) $(TOOLS) .devdata .testdata
