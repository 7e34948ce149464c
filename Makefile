# Two commands set up a fresh machine: `make run` and `make test`. Both create the virtualenv
# and install what they need on the way.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: run test tools lint unit integration clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

## run: the service on the embedded broker and PostgreSQL (`make run ARGS=--demo` adds the simulator)
run: $(BIN)/.installed
	$(BIN)/leadledger up $(ARGS)

## test: lint, type-check and the whole test suite (unit and integration)
# A private base temp dir: pytest resets /tmp/pytest-of-$USER to mode 700 at every session
# start, which would lock the unprivileged embedded PostgreSQL of a concurrent run out of
# its data directory. Kept for inspection when a test fails.
test: lint tools
	@tmp=$$(mktemp -d /tmp/leadledger-test.XXXXXX); \
	$(BIN)/pytest -p no:cacheprovider --basetemp=$$tmp $(ARGS); rc=$$?; \
	if [ $$rc -eq 0 ]; then rm -rf $$tmp; else echo "test files kept in $$tmp"; fi; \
	exit $$rc

## tools: Debian's prometheus package (server and promtool) for the deployment tests
tools:
	bash scripts/install-prometheus.sh

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
