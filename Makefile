# make run   set up a virtual environment, migrate the SQLite database, serve on 127.0.0.1:8000
# make test  set up, lint, run the suite on SQLite, then the database tests on PostgreSQL
# make test-fast  lint and the tests that start no server (not marked slow), on SQLite: under a minute
# make messages  extract the texts of the web UI, the mails and the findings into the catalogues and compile them (commit the .po and .mo)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -n auto
# Third-party tools whose dependency pins clash with ours get their own environment.
INTEROP ?= .venv-interop

.PHONY: run test test-fast lint bench clean messages
TRANSLATIONS := stspolicy/translations

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

$(INTEROP)/.installed: requirements-interop.txt
	$(PYTHON) -m venv $(INTEROP)
	$(INTEROP)/bin/pip install --disable-pip-version-check -q -r requirements-interop.txt
	touch $@

run: $(VENV)/.runtime-installed
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi user check-admin
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports  # the dependency rule: contracts in pyproject.toml, docs/architecture.md

test: lint $(INTEROP)/.installed
	$(BIN)/pytest $(PYTEST_ARGS) --database sqlite
	$(BIN)/pytest $(PYTEST_ARGS) --database postgresql -m database

test-fast: lint
	$(BIN)/pytest $(PYTEST_ARGS) --database sqlite -m "not slow"

bench: $(VENV)/.dev-installed $(INTEROP)/.installed
	$(BIN)/python -m bench.policy_fetch
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.policy_nginx
	$(BIN)/python -m bench.soak
	$(BIN)/python -m bench.node_propagation
	$(BIN)/python -m bench.alerts

# The compiled .mo files are committed beside their .po, so a fresh checkout serves every language.
messages: $(VENV)/.runtime-installed
	$(BIN)/pybabel -q extract -F babel.cfg --no-location --sort-output -k _l -k words -k plural_words:1,2 -o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel -q update -N --no-fuzzy-matching -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS)
	$(BIN)/pybabel -q compile -d $(TRANSLATIONS)

clean:
	rm -rf $(VENV) $(INTEROP) .pytest_cache
