# ScaleLab: `make run` serves the app, `make test` runs the whole suite.
# Both create .venv and install what they need on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKER_THREADS ?= 8
PYTEST_ARGS ?=
# Where `collectstatic` writes (the settings read STATIC_ROOT from the environment).
STATIC_ROOT ?= staticfiles
STATIC_MANIFEST := $(STATIC_ROOT)/staticfiles.json

.PHONY: run run-distributed worker static test lint bench chromium clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "Python 3.11 is needed"' || \
		{ echo "ScaleLab needs Python 3.11: set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.deps-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.deps

# Hashed names, with brotli and gzip copies, that browsers cache for ten years
# (scalelab/staticfiles.py). Redone only when a source or the installed packages
# changed: it compresses plotly.js, which takes about ten seconds.
$(STATIC_MANIFEST): $(shell find static -type f 2>/dev/null) $(VENV)/.deps
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0

static: $(STATIC_MANIFEST)

# Embedded mode (no REDIS_URL): one process serves the app and runs simulations.
# With REDIS_URL set, this serves the web tier only: start workers with `make worker`.
run: $(VENV)/.deps $(STATIC_MANIFEST)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py loadlessons
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

# Distributed mode on one machine: a worker process beside Daphne (needs REDIS_URL).
run-distributed: $(VENV)/.deps $(STATIC_MANIFEST)
	@test -n "$(REDIS_URL)" || { echo "set REDIS_URL, e.g. REDIS_URL=redis://127.0.0.1:6379/0"; exit 1; }
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py loadlessons
	@trap 'kill 0' INT TERM EXIT; \
		$(BIN)/celery -A scalelab worker --pool threads --concurrency $(WORKER_THREADS) --loglevel WARNING & \
		$(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

worker: $(VENV)/.deps
	$(BIN)/celery -A scalelab worker --pool threads --concurrency $(WORKER_THREADS) --loglevel WARNING

# Browser tests drive Debian's chromium; install it when missing (as root).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = "0" ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "The browser tests need Debian's chromium. Install it with:"; \
			echo "    sudo apt-get install -y chromium"; \
			exit 1; \
		fi; }

# The page's client logic under Node's own runner (no dependencies), then the rest.
test: $(VENV)/.deps-dev chromium
	node --test tests/js/*.test.js
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.deps-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(VENV)/.deps-dev
	$(BIN)/python bench/engines.py

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache .mypy_cache
