# civic: `make up` starts everything, `make test` runs every test. Both set up .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEVENV := $(BIN)/python -m civic.devenv --

.PHONY: up test lint typecheck unit integration api browser e2e faults contracts bench-bus bench-registration bench-surveys bench-notifications bench-content bench-subscriber bench-web bench-rush clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.lock
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -e .
	touch $(STAMP)

up: $(STAMP)
	$(DEVENV) $(BIN)/python -m civic.up

test: $(STAMP) lint typecheck
	$(DEVENV) $(BIN)/pytest $(PYTEST_ARGS)

# One tier each (the folder under tests/ and its marker); PYTEST_ARGS passes on, e.g. PYTEST_ARGS="-x -k seats".
# unit needs no servers, so it starts none.
unit: $(STAMP)
	$(BIN)/pytest -m unit tests/unit $(PYTEST_ARGS)

integration api browser e2e faults: $(STAMP)
	$(DEVENV) $(BIN)/pytest -m $@ tests/$@ $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check civic shared services web tests bench clients
	$(BIN)/ruff format --check civic shared services web tests bench clients

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/civic contracts

bench-bus: $(STAMP)
	$(DEVENV) $(BIN)/python -m bench.bus

# Durable commits, as in production: the baseline is a commit per write, which fsync=off would make free.
bench-registration: $(STAMP)
	CIVIC_DURABLE_POSTGRES=1 $(DEVENV) $(BIN)/python -m bench.registration

bench-surveys: $(STAMP)
	$(DEVENV) $(BIN)/python -m bench.surveys

bench-notifications: $(STAMP)
	$(DEVENV) $(BIN)/python -m bench.notifications

bench-content: $(STAMP)
	$(DEVENV) $(BIN)/python -m bench.content

bench-subscriber: $(STAMP)
	$(DEVENV) $(BIN)/python -m bench.subscriber

bench-web: $(STAMP)
	$(DEVENV) $(BIN)/python -m bench.web

# The deployment as in production, separate processes; RUSH_ARGS="--rush 2000 --clients 200" for a quick run.
bench-rush: $(STAMP)
	$(DEVENV) $(BIN)/python -m bench.rush $(RUSH_ARGS)

clean:
	rm -rf .civic .pytest_cache .mypy_cache .ruff_cache
