# Two commands set up a fresh machine: `make run` and `make test`. Both create the virtualenv
# and install what they need on the way.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: run test lint unit integration clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

## run: the service on the embedded broker and PostgreSQL (`make run ARGS=--demo` adds the simulator)
run: $(BIN)/.installed
	$(BIN)/leadledger up $(ARGS)

## test: lint, type-check and the whole test suite (unit and integration)
test: lint
	$(BIN)/pytest -p no:cacheprovider $(ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(BIN)/.installed
	$(BIN)/pytest tests/unit $(ARGS)

integration: $(BIN)/.installed
	$(BIN)/pytest tests/integration $(ARGS)

clean:
	rm -rf $(VENV) .leadledger .mypy_cache .ruff_cache .pytest_cache
