# The README promises two commands: `make demo` and `make test`. Both create .venv when missing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.13 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck unit integration e2e infra bench synth clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3

# CDK runs jsii on the machine's Node; keep it quiet and offline.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := 1
STAGE ?= dev
CDK := node_modules/.bin/cdk

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lambdaserve demo

# Every wheel the layer-building and training-image tests install, fetched once here, so the
# tests read no index.
WHEELHOUSE := .wheelhouse
$(WHEELHOUSE)/.complete: layers/requirements/*.txt training/framework-image.txt pyproject.toml | $(STAMP)
	$(BIN)/python -m layers.wheelhouse --out $(WHEELHOUSE)
	touch $@

test: $(STAMP) lint $(WHEELHOUSE)/.complete
	LAMBDASERVE_WHEELHOUSE=$(CURDIR)/$(WHEELHOUSE) $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

infra: $(STAMP) $(WHEELHOUSE)/.complete
	LAMBDASERVE_WHEELHOUSE=$(CURDIR)/$(WHEELHOUSE) $(BIN)/python -m pytest tests/infra

$(CDK): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $(CDK)

# Synthesizes every stack offline (layers built without Docker), then lints the templates.
synth: $(STAMP) $(CDK)
	rm -rf cdk.out
	$(CDK) synth --no-notices --quiet -c stage=$(STAGE)
	$(BIN)/cfn-lint --non-zero-exit-code error cdk.out/*.template.json

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) $(WHEELHOUSE) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache .hypothesis
