# The two commands of README.md: `make demo` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Front-end assets come from npm at build time (package-lock.json pins them); never a CDN,
# never a committed copy. They land in core/web/static/vendor/ and ship inside the wheel.
ASSETS := core/web/static/vendor/htmx.min.js

.PHONY: demo test venv assets messages system-deps lint bench clean

$(STAMP): pyproject.toml | $(ASSETS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

$(ASSETS): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm is needed to fetch the web assets (Debian: apt-get install npm)" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p $(@D)
	cp node_modules/htmx.org/dist/htmx.min.js $@

assets: $(ASSETS)

## Refresh the gettext catalogues (core/locale) from the templates and core/web/ui.
messages: $(STAMP)
	$(BIN)/python -m core.web.ui.catalog

## Start the product on its embedded default: SQLite under ./var, in-process jobs, demo tenant.
demo: $(STAMP) $(ASSETS)
	$(BIN)/xindai demo

## Install what the tests need (Debian packages too, when root) and run the whole suite.
test: system-deps $(STAMP) $(ASSETS)
	$(BIN)/python -m pytest -q

system-deps:
	@sh deploy/system-deps.sh

## Print the benchmark figures (SQLite; add PG=postgresql://postgres@127.0.0.1/postgres
## and REDIS=redis://127.0.0.1:6379/14).
bench: $(STAMP)
	$(BIN)/python tests/bench/bench_write_path.py $(if $(PG),--postgres $(PG))
	$(BIN)/python tests/bench/bench_encryption.py --n 5000 $(if $(PG),--postgres $(PG))
	$(BIN)/python tests/bench/bench_audit_verify.py $(if $(PG),--postgres $(PG))
	$(BIN)/python tests/bench/bench_events.py $(if $(PG),--postgres $(PG)) $(if $(REDIS),--redis $(REDIS))
	$(BIN)/python tests/bench/bench_idempotency.py $(if $(PG),--postgres $(PG))
	$(BIN)/python tests/bench/bench_documents.py
	$(BIN)/python tests/bench/bench_schedule.py
	$(if $(PG),$(BIN)/python tests/bench/bench_officers.py --postgres $(PG))
	$(BIN)/python tests/bench/bench_import.py --rows 20000 $(if $(PG),--postgres $(PG))

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache node_modules core/web/static/vendor
