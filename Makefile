# keyward: `make demo` runs the main job end to end; `make test` runs lint, types and tests.
# Each target bootstraps what it needs: a .venv with pinned Python packages and, for the
# Storage emulator Azurite, pinned npm packages.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
DEPS_HASH := $(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
PY_STAMP := $(VENV)/.installed-$(DEPS_HASH)
NODE_STAMP := node_modules/.installed
PYTEST_ARGS ?=

.PHONY: all bootstrap test lint typecheck pyversions pytest demo emulator azurite bench clean help

all: test

help:
	@echo "make demo      run keyward's main job end to end on embedded defaults"
	@echo "make test      lint (ruff), type-check (mypy) and run the tests (pytest)"
	@echo "make emulator  run the local Azure emulator in the foreground"
	@echo "make azurite   run Azurite (Azure Storage emulator) in the foreground"
	@echo "make bench     run the benchmarks and rewrite docs/benchmarks.md"

bootstrap: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

$(NODE_STAMP): package.json package-lock.json
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lint: $(PY_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(PY_STAMP)
	$(PY) -m mypy

# Every supported Python (pyproject classifiers): the .venv's runs the tests; the others, when
# this machine has them, compile and import the product (seconds, not a test run).
pyversions: $(PY_STAMP)
	$(PY) -m devtools.pyversions

pytest: bootstrap
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck pyversions pytest

demo: bootstrap
	$(PY) -m devtools.demo

emulator: bootstrap
	$(PY) -m devtools.emulator --port 8443 --state .keyward/emulator-state.json

azurite: bootstrap
	@mkdir -p .azurite
	node_modules/.bin/azurite --silent --location .azurite --skipApiVersionCheck --disableTelemetry

bench: bootstrap
	$(PY) -m bench

clean:
	rm -rf $(VENV) node_modules .azurite .keyward .mypy_cache .ruff_cache .pytest_cache .hypothesis
