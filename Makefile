# enrolkit developer tasks. Everything runs in .venv; `make test` is what CI runs.
#
#   make demo      install, migrate, load the demo site, serve it on http://127.0.0.1:5000
#   make test      install, run the whole suite on SQLite (and PostgreSQL when installed)
#   make bench     run benchmarks/bench_*.py
#   make lint      ruff check + ruff format --check
#
# Variables: PYTHON (the interpreter for the venv), PYTEST_ARGS (extra pytest arguments),
# POSTGRES=auto|yes|no (test on PostgreSQL when found / always, failing if absent / never).

SHELL := /bin/bash
PYTHON ?= python3
POSTGRES ?= auto
PYTEST_ARGS ?=

VENV := .venv
BIN := $(VENV)/bin
# One distribution per folder under plugins/; none yet is fine.
PLUGIN_PROJECTS := $(wildcard plugins/*/pyproject.toml)
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(PLUGIN_PROJECTS))
# Reinstall only when a pyproject.toml changes (editable installs pick up code changes).
INSTALLED := $(VENV)/.installed

.PHONY: venv install demo test bench lint

venv: $(BIN)/python

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

PIP_INSTALL := $(BIN)/pip install -q -e '.[test]' $(addprefix -e ,$(PLUGIN_DIRS))

install: venv
	$(PIP_INSTALL)
	@touch $(INSTALLED)

$(INSTALLED): pyproject.toml $(PLUGIN_PROJECTS) | venv
	$(PIP_INSTALL)
	@touch $@

demo: $(INSTALLED)
	$(BIN)/enrolkit db upgrade
	$(BIN)/enrolkit demo
	$(BIN)/enrolkit serve

# With PostgreSQL found, scripts/postgres.sh starts a throwaway cluster, sets
# ENROLKIT_TEST_POSTGRES_URL for the run and removes the cluster afterwards, even on failure.
# A URL already in the environment is used as is.
PYTEST := $(BIN)/pytest -q $(PYTEST_ARGS)
PG := bash scripts/postgres.sh

test: $(INSTALLED)
	@if [[ "$(POSTGRES)" == no ]]; then \
	    echo "== Testing on SQLite only (POSTGRES=no)"; \
	    env -u ENROLKIT_TEST_POSTGRES_URL $(PYTEST); \
	elif [[ -n "$$ENROLKIT_TEST_POSTGRES_URL" ]]; then \
	    echo "== Testing on SQLite and PostgreSQL at $$ENROLKIT_TEST_POSTGRES_URL"; \
	    $(PYTEST); \
	elif [[ "$(POSTGRES)" == yes ]] || $(PG) found >/dev/null 2>&1; then \
	    echo "== Testing on SQLite and a throwaway PostgreSQL cluster"; \
	    $(PG) run "$$(mktemp -d)" -- $(PYTEST); \
	else \
	    echo "== Testing on SQLite only (PostgreSQL not found; POSTGRES=yes requires it)"; \
	    $(PYTEST); \
	fi

bench: $(INSTALLED)
	@set -e; for script in $(sort $(wildcard benchmarks/bench_*.py)); do \
	    echo "== $$script"; \
	    $(BIN)/python "$$script"; \
	done

# Both checks always run, so one pass lists every problem.
lint: $(INSTALLED)
	@status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/ruff format --check . || status=1; \
	exit $$status
