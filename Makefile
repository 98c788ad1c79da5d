# Two commands on a fresh machine: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=
# One-click links minted under `make run` point at the address it serves, unless set.
UNSUBSCRIBE_BASE_URL ?= http://$(HOST):$(PORT)
# `make run` and `make worker` are the development set-up and say so: the service defaults to
# production mode (DEBUG off), where it refuses to start with its development secrets.
DEV_ENV = DEBUG=true UNSUBSCRIBE_BASE_URL='$(UNSUBSCRIBE_BASE_URL)'

# Installs are stamped against pyproject.toml, so a second `make run` starts in seconds.
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint install worker bench clean messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(RUN_STAMP)

install: $(RUN_STAMP)

run: $(RUN_STAMP)
	$(DEV_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEV_ENV) $(BIN)/python manage.py ensure_admin --url http://$(HOST):$(PORT)/admin/
	$(DEV_ENV) $(BIN)/python manage.py runserver $(HOST):$(PORT)

test: $(TEST_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check .

# One worker for every queue (compliance/queues.py) with beat; production gives each queue its own.
worker: $(RUN_STAMP)
	$(DEV_ENV) $(BIN)/celery -A compliance worker --beat --queues celery,optouts,webhooks,reports,imports,sweeps --loglevel INFO

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache

# Recipient pages are translated; edit locale/*/LC_MESSAGES/django.po, then run this (needs
# GNU gettext). The compiled .mo files are committed, so running the service never needs it.
messages: $(TEST_STAMP)
	$(BIN)/python manage.py makemessages -l de --ignore=.venv --ignore=tests --ignore=bench
	$(BIN)/python manage.py compilemessages --ignore=.venv
