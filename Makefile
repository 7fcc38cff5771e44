# Development tasks for session-sweeper on Debian 12.
#
#   make demo    install what is missing, then run the demo
#   make test    install what is missing, then run the test suite
#   make lint    ruff check, ruff format --check and squawk on migrations/
#
# `demo` and `test` run `system-deps` first, which installs PostgreSQL 15
# and pg_cron with apt-get only when they are missing.

PYTHON ?= python3.11
VENV := .venv
VENV_STAMP := $(VENV)/.installed
PG_BINDIR := /usr/lib/postgresql/15/bin
PG_LIBDIR := /usr/lib/postgresql/15/lib
SYSTEM_PACKAGES := postgresql-15 postgresql-15-cron
PYTEST_ARGS ?=

.PHONY: venv system-deps demo test bench bench-quick lint

venv: $(VENV_STAMP)

# The stamp makes a second `make venv` a no-op until pyproject.toml changes.
$(VENV_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -e '.[dev]'
	touch $(VENV_STAMP)

system-deps:
	@if [ -x $(PG_BINDIR)/postgres ] && [ -f $(PG_LIBDIR)/pg_cron.so ]; then \
		echo "system-deps: PostgreSQL 15 and pg_cron are installed."; \
		exit 0; \
	fi; \
	if [ "$$(id -u)" -eq 0 ]; then \
		sudo=""; \
	elif command -v sudo >/dev/null 2>&1; then \
		sudo="sudo"; \
	else \
		echo "system-deps: $(SYSTEM_PACKAGES) are missing, and installing them needs root or sudo." >&2; \
		echo "system-deps: run 'apt-get install $(SYSTEM_PACKAGES)' as root, then rerun make." >&2; \
		exit 1; \
	fi; \
	echo "system-deps: $(PG_BINDIR)/postgres or $(PG_LIBDIR)/pg_cron.so is missing."; \
	echo "system-deps: running $$sudo apt-get update"; \
	$$sudo apt-get update; \
	echo "system-deps: running $$sudo apt-get install -y $(SYSTEM_PACKAGES)"; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $(SYSTEM_PACKAGES)

demo: system-deps venv
	$(VENV)/bin/session-sweeper demo

test: system-deps venv
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: system-deps venv
	$(VENV)/bin/python -m bench

bench-quick: system-deps venv
	$(VENV)/bin/python -m bench --quick

# squawk reads .squawk.toml, where each rule it skips is justified. The rollback
# scripts exist to drop objects, so their run skips the ban-drop-* rules too.
SQUAWK_ROLLBACK_RULES := ban-drop-schema,ban-drop-table,ban-drop-function,ban-drop-column,ban-drop-view
SQUAWK_CONFIG_RULES = $(shell $(VENV)/bin/python -c "import tomllib; print(','.join(tomllib.load(open('.squawk.toml', 'rb'))['excluded_rules']))")

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/squawk --exclude-path '*.rollback.sql' migrations/*.sql
	$(VENV)/bin/squawk --exclude $(SQUAWK_CONFIG_RULES),$(SQUAWK_ROLLBACK_RULES) migrations/*.rollback.sql
