# The two commands a new user needs: `make run` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3.12
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Runs a command against DATABASE_URL, or an embedded PostgreSQL (data in .pgdata/<name>) when unset.
WITH_DB = $(BIN)/python -m loyalty.dev.embedded_db

.PHONY: run test bench lint lock install install-dev clean-db production-check

$(BIN)/uv:
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.12 is required (pyenv install 3.12, or your package manager)."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.8

$(VENV)/.installed: requirements.txt $(BIN)/uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(BIN)/uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.txt -r requirements-dev.txt
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# PORT reaches the settings too: e-mailed links (SITE_URL) point at the port served unless SITE_URL is set.
run: install
	@DEBUG=true PORT=$(PORT) $(WITH_DB) demo -- $(BIN)/python -m loyalty.dev.server

# Production, after migrate and collectstatic and before gunicorn starts (README, "Production"): Django's deploy
# checks with warnings as failures, then what the web entry point would refuse to start with.
production-check:
	$(BIN)/python manage.py check --deploy --fail-level WARNING
	$(BIN)/python -m loyalty.startup

test: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	@if [ -x /usr/bin/chromium ]; then echo "Browser tests: running with /usr/bin/chromium."; \
	 else echo "Browser tests: SKIPPED - /usr/bin/chromium is not installed (apt-get install chromium)."; fi
	TESTING=true $(WITH_DB) test -- $(BIN)/pytest $(PYTEST_ARGS)

bench: install-dev
	TESTING=true $(WITH_DB) bench -- $(BIN)/python -m bench $(BENCH_ARGS)

lint: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Re-pin dependencies after editing requirements*.in.
lock: $(BIN)/uv
	$(BIN)/uv pip compile --quiet --no-header --python-version 3.12 requirements.in -o requirements.txt
	$(BIN)/uv pip compile --quiet --no-header --python-version 3.12 requirements-dev.in -o requirements-dev.txt

clean-db:
	rm -rf .pgdata
