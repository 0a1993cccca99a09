# reelpolicy: two commands on a fresh machine (Python 3.11+ and make).
#   make up    the whole platform on embedded PostgreSQL + broker (Ctrl-C stops it)
#   make test  lint + the whole test suite
#   make chaos the chaos run: SEED=... (default: a random one, printed) MINUTES=... (default 5)
#   make fuzz  the OpenAPI fuzz suite: SEED=... (default: a random one, printed) EXAMPLES=... (default 100)
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_PREFERENCE := only-system
export XDG_RUNTIME_DIR ?= /tmp/reelpolicy-runtime-$(shell id -u)

.PHONY: up test lint format bench sync clean chaos fuzz

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv

$(VENV)/.synced: $(UV) pyproject.toml uv.lock $(wildcard libs/*/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml)
	$(UV) sync --all-packages --frozen
	touch $@

sync: $(VENV)/.synced

up: sync
	mkdir -p $(XDG_RUNTIME_DIR)
	$(VENV)/bin/reelpolicy-dev up

lint: sync
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: sync
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	mkdir -p $(XDG_RUNTIME_DIR)
	$(VENV)/bin/pytest

MINUTES ?= 5
chaos: sync
	mkdir -p $(XDG_RUNTIME_DIR)
	$(VENV)/bin/python tests/chaos/run.py --minutes $(MINUTES) $(if $(SEED),--seed $(SEED))

# make test runs tests/fuzz with a fixed seed and few examples; this runs it longer.
EXAMPLES ?= 100
fuzz: sync
	mkdir -p $(XDG_RUNTIME_DIR)
	FUZZ_SEED=$(or $(SEED),$$RANDOM$$RANDOM) FUZZ_EXAMPLES=$(EXAMPLES) \
		$(VENV)/bin/pytest tests/fuzz -m fuzz -p no:cacheprovider

bench: sync
	for b in bench/*.py; do $(VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(TOOLS) .devdata .testdata
