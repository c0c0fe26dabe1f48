# enrolkit developer tasks. Everything runs in .venv; `make test` is what CI runs.
#
#   make demo      install, migrate, load the demo site, serve it on http://127.0.0.1:5000
#   make test      install, run the whole suite on SQLite (and PostgreSQL when installed)
#   make bench     run the benchmarks on SQLite and PostgreSQL, rewrite benchmarks/RESULTS.md
#   make lint      ruff check + ruff format --check
#
# Variables: PYTHON (the interpreter for the venv), PYTEST_ARGS (extra pytest arguments),
# BENCH_ARGS (arguments for every benchmark, e.g. --quick for small sizes; --only bench_sync,...),
# POSTGRES=auto|yes|no (test/bench on PostgreSQL when found / always, failing if absent / never).

SHELL := /bin/bash
PYTHON ?= python3
POSTGRES ?= auto
PYTEST_ARGS ?=
BENCH_ARGS ?=

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

# $(call with_postgres,COMMAND): run COMMAND on SQLite and, as POSTGRES says, on PostgreSQL.
define with_postgres
	@if [[ "$(POSTGRES)" == no ]]; then \
	    echo "== SQLite only (POSTGRES=no)"; \
	    env -u ENROLKIT_TEST_POSTGRES_URL $(1); \
	elif [[ -n "$$ENROLKIT_TEST_POSTGRES_URL" ]]; then \
	    echo "== SQLite and PostgreSQL at $$ENROLKIT_TEST_POSTGRES_URL"; \
	    $(1); \
	elif [[ "$(POSTGRES)" == yes ]] || $(PG) found >/dev/null 2>&1; then \
	    echo "== SQLite and a throwaway PostgreSQL cluster"; \
	    $(PG) run "$$(mktemp -d)" -- $(1); \
	else \
	    echo "== SQLite only (PostgreSQL not found; POSTGRES=yes requires it)"; \
	    $(1); \
	fi
endef

test: $(INSTALLED)
	$(call with_postgres,$(PYTEST))

# benchmarks/run_all.py runs bench_engine, bench_sync, bench_flatfile (with --memory: 1,000,000
# lines), bench_completion, bench_autoenrol, bench_growth, bench_rules and bench_web (SQLite only),
# each on both backends, then rewrites the generated section of benchmarks/RESULTS.md (the
# hand-written sections stay). At the issue's sizes, about 25-45 min on a quiet 2-core machine
# (the longest part: the 1,000,000-line flat file on PostgreSQL); BENCH_ARGS=--quick, about 3 min.
# Left out, as they need long runs or a set-up of their own (run them by hand): bench_load.py (two
# nodes under LMS traffic), bench_cli.py, bench_scim.py, bench_webhooks.py.
BENCH := $(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

bench: $(INSTALLED)
	$(call with_postgres,$(BENCH))

# Both checks always run, so one pass lists every problem.
lint: $(INSTALLED)
	@status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/ruff format --check . || status=1; \
	exit $$status
