# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
USER ?= alice

.PHONY: install run test test-fast test-faults lint token redrive clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

run: install  ## start the local cloud on 127.0.0.1 and serve the engine until Ctrl-C
	$(PY) -m infra.local run

test: install  ## the whole suite: unit, integration and end-to-end, slow tests included
	$(PY) -m pytest

test-fast: install  ## everything but the slow tests
	$(PY) -m pytest -m "not slow"

test-faults: install  ## the fault-injection suite alone, with its table of figures
	$(PY) -m pytest tests/faults

lint: install
	$(VENV)/bin/ruff check .

token: install  ## print a bearer token: make token USER=alice
	@$(PY) -m infra.local token $(USER)

redrive: install  ## move dead-lettered order messages back to the orders queue (of the running local cloud)
	$(PY) -m infra.local redrive

clean:  ## forget the local cloud's data (orders, pools) and logs
	rm -rf .local
