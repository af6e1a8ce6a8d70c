# Orderly: `make run` starts the whole system on a laptop, `make test` runs the
# suite that needs no outside server. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# One install for both running and testing (requirements-dev includes the
# runtime pins); the stamp is rebuilt whenever either file changes.
STAMP := $(VENV)/.requirements.stamp
PORT ?= 8000
export ORDERLY_SWEEP_SECONDS ?= 15

PYTEST := $(BIN)/python -m pytest
UNIT_MARKERS := not system and not browser and not postgres
PG_URL ?= postgres://postgres@127.0.0.1:5432/orderly
REDIS_URL ?= redis://127.0.0.1:6379/0
# pytest exits 5 when a marker selects no test: a subset with no tests yet
# (system, browser) must not fail the run.
ALLOW_EMPTY = status=$$?; if [ $$status -eq 5 ]; then echo "(no tests in this subset yet)"; else exit $$status; fi

.PHONY: help venv setup run run-scaled test test-all test-unit-postgres test-system test-browser demo clean

help:
	@echo "make run       start web + Celery worker + beat on SQLite (PORT=$(PORT))"
	@echo "make run-scaled  the same on local PostgreSQL + Redis: 4 web workers, 2 Celery workers, 1 beat"
	@echo "make test      the suite that needs no outside server"
	@echo "make test-all  everything: also PostgreSQL, Redis and Chromium"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(STAMP)

# Database schema and static files; safe to run again.
setup: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0

# Demo data (idempotent): prints the URLs and every demo login.
demo: setup
	ORDERLY_BASE_URL=$${ORDERLY_BASE_URL:-http://127.0.0.1:$(PORT)} \
	  $(BIN)/python manage.py orderly_demo --port $(PORT)

# honcho gives the first Procfile entry (web) the port; Ctrl-C stops all three.
run: demo
	PATH="$(BIN):$$PATH" ORDERLY_BASE_URL=$${ORDERLY_BASE_URL:-http://127.0.0.1:$(PORT)} \
	  $(BIN)/honcho start --procfile Procfile --port $(PORT)

# Scaled mode on one machine: PostgreSQL ($(PG_URL); the database is created
# when missing) and Redis ($(REDIS_URL)); gunicorn with 4 workers, two Celery
# worker processes and one beat (Procfile.scaled). Same demo data and logins
# as `make run`. Several machines: see README.md, "Scale-out".
SCALED_ENV = DATABASE_URL=$(PG_URL) CELERY_BROKER_URL=$(REDIS_URL)
run-scaled: $(STAMP)
	$(BIN)/python -c "import sys, psycopg; from urllib.parse import urlsplit, urlunsplit; \
	  u = urlsplit(sys.argv[1]); name = u.path.lstrip('/'); \
	  c = psycopg.connect(urlunsplit(u._replace(path='/postgres')), autocommit=True); \
	  c.execute('SELECT 1 FROM pg_database WHERE datname = %s', (name,)).fetchone() \
	  or c.execute('CREATE DATABASE \"%s\"' % name)" "$(PG_URL)"
	$(SCALED_ENV) $(BIN)/python manage.py migrate --noinput
	$(SCALED_ENV) $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(SCALED_ENV) ORDERLY_BASE_URL=$${ORDERLY_BASE_URL:-http://127.0.0.1:$(PORT)} \
	  $(BIN)/python manage.py orderly_demo --port $(PORT)
	PATH="$(BIN):$$PATH" $(SCALED_ENV) ORDERLY_BASE_URL=$${ORDERLY_BASE_URL:-http://127.0.0.1:$(PORT)} \
	  $(BIN)/honcho start --procfile Procfile.scaled --port $(PORT)

test: $(STAMP)
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(PYTEST) -m "$(UNIT_MARKERS)"

# Everything: the unit suite on SQLite, then again (with the PostgreSQL-only
# tests) on PostgreSQL, then the real-process system tests on PostgreSQL and
# Redis, then the browser tests in Chromium.
test-all: test test-unit-postgres test-system test-browser

test-unit-postgres: $(STAMP)
	DATABASE_URL=$(PG_URL) $(PYTEST) -m "not system and not browser" || { $(ALLOW_EMPTY); }

test-system: $(STAMP)
	DATABASE_URL=$(PG_URL) CELERY_BROKER_URL=$(REDIS_URL) $(PYTEST) -m system || { $(ALLOW_EMPTY); }

test-browser: $(STAMP)
	DATABASE_URL=$(PG_URL) CELERY_BROKER_URL=$(REDIS_URL) $(PYTEST) -m browser || { $(ALLOW_EMPTY); }

clean:
	rm -rf $(VENV) var/staticfiles var/broker var/celerybeat-schedule*
