# The two commands of the README: `make demo` runs the product, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
# The whole suite includes the PostgreSQL tests; `CIVICFLOW_TEST_POSTGRES_URL= make test` runs SQLite only.
CIVICFLOW_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export CIVICFLOW_TEST_POSTGRES_URL

.PHONY: install demo serve test lint bench clean

$(BIN)/civicflow: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/civicflow

demo: install
	$(BIN)/civicflow demo
	$(BIN)/civicflow serve --port $(PORT)

lint: install
	$(BIN)/ruff check .

test: install lint
	$(BIN)/pytest -q

bench: install
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) instance .pytest_cache
