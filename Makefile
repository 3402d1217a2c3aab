# The two commands of README.md: `make demo` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv system-deps lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

## Start the product on its embedded default: SQLite under ./var, in-process jobs, demo tenant.
demo: $(STAMP)
	$(BIN)/xindai demo

## Install what the tests need (Debian packages too, when root) and run the whole suite.
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q

system-deps:
	@sh deploy/system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache
