# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
USER ?= alice
STAGE ?= dev
CDK_OUT ?= cdk.out
CDK_CLI ?= npx --yes aws-cdk@2.1148.1  # the CLI release that reads this aws-cdk-lib's output
# jsii runs the CDK on this machine's Node.js 20, which it reports as past its end of life on every call.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION ?= 20

.PHONY: install run test test-fast test-faults bench lint token redrive synth deploy clean

$(VENV)/.installed: requirements.txt requirements-local.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip>=24,<26.3"  # chalice 1.34 packages with pip and supports no newer
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

bench: install  ## load the whole local cloud and print its figures: make bench ARGS="--venue-latency 1 --emulator localstack"
	$(PY) -m infra.bench $(ARGS)

lint: install
	$(VENV)/bin/ruff check .

token: install  ## print a bearer token: make token USER=alice
	@$(PY) -m infra.local token $(USER)

redrive: install  ## move dead-lettered order messages back to the orders queue (of the running local cloud)
	$(PY) -m infra.local redrive

synth: install  ## write a stage's CloudFormation template offline, no AWS account needed: make synth STAGE=prod
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} CDK_OUTDIR=$(CDK_OUT) \
	CDK_CONTEXT_JSON='{"stage": "$(STAGE)"}' $(PY) -m infra.cdk
	@echo "wrote $(CDK_OUT)/$(STAGE).template.json"

deploy: install  ## deploy a stage to the AWS account of your credentials: make deploy STAGE=dev
	$(CDK_CLI) deploy -c stage=$(STAGE) $(STAGE)

clean:  ## forget the local cloud's data (orders, pools) and logs
	rm -rf .local $(CDK_OUT) chalice.out
