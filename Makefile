# The two commands of the README: `make demo` runs the product, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
# The whole suite includes the PostgreSQL tests; `CIVICFLOW_TEST_POSTGRES_URL= make test` runs SQLite only.
CIVICFLOW_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export CIVICFLOW_TEST_POSTGRES_URL
# The bpmn-js viewer the instance page draws diagrams with, from the npm registry (package-lock.json).
VIEWER := node_modules/bpmn-js/dist/bpmn-navigated-viewer.production.min.js
# The browser tests drive Debian's chromium; Playwright never downloads a browser of its own.
CHROMIUM ?= /usr/bin/chromium
PDFTOTEXT ?= /usr/bin/pdftotext

.PHONY: install assets browser demo test lint bench clean

$(BIN)/civicflow: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(VIEWER): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

assets: $(VIEWER)

$(CHROMIUM):
	apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null

# The postal letters' tests read their PDFs as a printer would, with poppler's pdftotext.
$(PDFTOTEXT):
	apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq poppler-utils >/dev/null

browser: $(CHROMIUM) $(PDFTOTEXT)

install: $(BIN)/civicflow assets

demo: install
	$(BIN)/civicflow demo
	$(BIN)/civicflow serve --port $(PORT)

lint: install assets
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	npm run --silent lint:js

# The tests marked `alone` time real servers under load: they run after the rest, with the cores to themselves.
test: install browser lint
	CIVICFLOW_CHROMIUM=$(CHROMIUM) $(BIN)/pytest -q -n 2 --dist worksteal -m "not alone" \
		--cov=engine --cov=web --cov=forms --cov-branch --cov-report=term
	$(BIN)/pytest -q -m alone -p no:cacheprovider

bench: install
	$(BIN)/python -m bench.engine
	$(BIN)/python -m bench.inbox
	$(BIN)/python -m bench.timers
	$(BIN)/python -m bench.public
	$(BIN)/python -m bench.editor
	$(BIN)/python -m bench.history
	$(BIN)/python -m bench.abuse
	$(BIN)/python -m bench.http

clean:
	rm -rf $(VENV) instance .pytest_cache node_modules test-artifacts
