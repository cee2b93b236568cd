# Two commands set everything up on a fresh machine: `make run` and `make test`.
# The Lambda runtime is Python 3.11 (infra/cdk pins it): the environment uses a python3.11 where there is one.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
VENV ?= .venv
PY := $(VENV)/bin/python
USER ?= alice
STAGE ?= dev
CDK_OUT ?= cdk.out
CDK_CLI ?= npx --yes aws-cdk@2.1148.1  # the CLI release that reads this aws-cdk-lib's output
# jsii runs the CDK on this machine's Node.js 20, which it reports as past its end of life on every call.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION ?= 20

.PHONY: browser install install-dev lock run test test-fast test-faults bench lint token redrive synth deploy clean

UV := $(VENV)/bin/uv
# The machine's own certificate store, as pip and curl use it: behind a proxy with its own CA, uv's bundled roots fail.
export UV_SYSTEM_CERTS ?= 1
LOCK_ARGS := --quiet --generate-hashes
LOCK := $(UV) pip compile $(LOCK_ARGS) --universal --python-version 3.11

# Three locked sets, each installed with every hash checked: the functions' own (requirements.lock, what Chalice
# packages), the local cloud's (make run) and the rest for tests, benchmarks and the CDK app (make test). Edit the
# requirements*.txt files, then `make lock`. Bytecode is compiled at install, as pip does: a cold start must not
# compile what it imports (the worker's took 470 ms instead of 180 without it, where PYTHONDONTWRITEBYTECODE is set).
$(UV): requirements-uv.lock
	@test -x $(PY) || { echo "creating $(VENV) with $$($(PYTHON) -V)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements-uv.lock
	@touch $@

$(VENV)/.installed-local: requirements-local.lock clients/cli/pyproject.toml | $(UV)
	@echo "installing the local cloud's packages into $(VENV) (the first time: about 10 s)"
	$(UV) pip install --python $(PY) --require-hashes --compile-bytecode -r requirements-local.lock
	@# The CLI (.venv/bin/order-engine), from this tree: its dependencies are in the lock above.
	$(UV) pip install --quiet --python $(PY) --no-deps --no-build-isolation --editable clients/cli
	@touch $@

$(VENV)/.installed-dev: requirements-dev.lock $(VENV)/.installed-local
	@echo "installing the test, benchmark and deployment packages into $(VENV) (the first time: about 30 s)"
	$(UV) pip install --python $(PY) --require-hashes --compile-bytecode -r requirements-dev.lock
	@touch $@

# The web blotter's browser tests drive Debian's chromium (tests/e2e/test_blotter.py): installed here when missing,
# where this user may (CI runs as root); elsewhere those tests say what to install and are skipped.
BROWSER ?= /usr/bin/chromium
browser:
	@if [ -x "$(BROWSER)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium for the browser tests (the first time: about a minute)"; \
	  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; \
	else echo "no $(BROWSER): the browser tests will be skipped (install Debian's chromium package to run them)"; fi

install: $(VENV)/.installed-local  ## what the local cloud needs

install-dev: $(VENV)/.installed-dev  ## everything: the tests, the benchmark and the CDK app too

lock: | $(UV)  ## regenerate the lock files from the requirements*.txt files (every pin and hash, every platform)
	$(LOCK) requirements-uv.txt -o requirements-uv.lock
	$(LOCK) requirements-dev.txt -o requirements-dev.lock
	$(LOCK) -c requirements-dev.lock requirements-local.txt -o requirements-local.lock
	$(LOCK) -c requirements-dev.lock requirements.txt -o requirements.lock
	$(UV) pip compile $(LOCK_ARGS) --python-version 3.13 --python-platform x86_64-manylinux_2_28 \
		requirements-localstack.txt -o requirements-localstack.lock  # its own environment (infra/local/servers.py)

run: install  ## start the local cloud on 127.0.0.1 and serve the engine until Ctrl-C
	$(PY) -m infra.local run

test: install-dev browser  ## the whole suite: unit, integration and end-to-end, slow tests included
	$(PY) -m pytest

test-fast: install-dev  ## everything but the slow tests
	$(PY) -m pytest -m "not slow"

test-faults: install-dev  ## the fault-injection suite alone, with its table of figures
	$(PY) -m pytest tests/faults

bench: install-dev  ## load the whole local cloud and print its figures: make bench ARGS="--venue-latency 1 --emulator localstack"
	$(PY) -m infra.bench $(ARGS)

lint: install-dev  ## ruff over the whole tree and mypy over the code (CI runs both)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

token: install  ## print a bearer token: make token USER=alice (an operator's: make token USER=ops SCOPE=metrics:read)
	@$(PY) -m infra.local token "$(USER)" $(if $(SCOPE),--scope "$(SCOPE)")

redrive: install  ## move dead-lettered order messages back to the orders queue (of the running local cloud)
	$(PY) -m infra.local redrive

synth: install-dev  ## write a stage's CloudFormation template offline, no AWS account needed: make synth STAGE=prod
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} CDK_OUTDIR=$(CDK_OUT) \
	CDK_CONTEXT_JSON='{"stage": "$(STAGE)"}' $(PY) -m infra.cdk
	@echo "wrote $(CDK_OUT)/$(STAGE).template.json"

deploy: install-dev  ## deploy a stage to the AWS account of your credentials: make deploy STAGE=dev
	$(CDK_CLI) deploy -c stage=$(STAGE) $(STAGE)

clean:  ## forget the local cloud's data (orders, pools) and logs
	@if test -x $(PY); then $(PY) -m infra.local clean; fi  # PostgreSQL's data, where a private clone keeps it
	rm -rf .local $(CDK_OUT) chalice.out
