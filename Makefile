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

.PHONY: install run test lint types pytest schemas bench bench-quick clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

$(STAMP): $(UV) uv.lock pyproject.toml $(wildcard */pyproject.toml */*/pyproject.toml)
	$(UV) sync --frozen --all-packages
	@touch $(STAMP)

install: $(STAMP)  ## Create .venv and install every package of the workspace

run: $(STAMP)  ## The whole stack, embedded, with the example services
	$(VENV)/bin/orra up --demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: $(STAMP)
	$(VENV)/bin/mypy libs services cli examples

pytest: $(STAMP)
	$(VENV)/bin/pytest

test: lint types pytest  ## Lint, type-check and run every test

schemas: $(STAMP)  ## Regenerate the committed event schemas (on purpose only)
	$(VENV)/bin/python -m orra_events.contracts --write
	$(VENV)/bin/python -m orra_events.asyncapi --write

bench: $(STAMP)  ## Full benchmark; writes BENCHMARKS.md
	$(VENV)/bin/python -m bench

bench-quick: $(STAMP)
	$(VENV)/bin/python -m bench --quick

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .pytest_cache .ruff_cache
