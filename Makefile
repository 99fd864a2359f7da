# The README promises two commands: `make demo` and `make test`. Both create .venv when missing,
# from uv.lock: one lock for the dev venv, CI, the demo, the Lambda layers and the training job.
SHELL := /bin/bash
PYTHON_VERSION := $(shell cat .python-version)
PYTHON ?= $(shell command -v python$(PYTHON_VERSION) 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
# uv itself, pinned, installed from the package index by the interpreter's own pip.
UV_VERSION := 0.13.8
UV_DIR := .uv
UV := $(CURDIR)/$(UV_DIR)/bin/uv
export UV
# uv uses the interpreter named below, never one it would download; the venv is .venv.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

.PHONY: demo test lint lock typecheck unit integration e2e infra runtime bench synth clean python

python:
	@[ -n "$(PYTHON)" ] && "$(PYTHON)" -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(PYTHON_VERSION)".split("."))))' 2>/dev/null \
	  || { echo "error: Python $(PYTHON_VERSION) is needed (.python-version), found '$(PYTHON)': install it (e.g. 'pyenv install $(PYTHON_VERSION)') or run 'make PYTHON=/path/to/python$(PYTHON_VERSION) ...'" >&2; exit 1; }

$(UV): | python
	@"$(PYTHON)" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
	    --target $(UV_DIR) uv==$(UV_VERSION) 2>/dev/null \
	  || { echo "error: could not install uv $(UV_VERSION) with '$(PYTHON) -m pip' (is pip there, and the package index reachable?)" >&2; exit 1; }

# A lock that no longer matches pyproject.toml stops here with what to run.
$(STAMP): pyproject.toml uv.lock | $(UV) python
	@said=$$($(UV) lock --check 2>&1) \
	  || { echo "error: uv.lock does not match pyproject.toml: run 'make lock' and commit uv.lock and the exported files ($$(tail -1 <<<"$$said"))" >&2; exit 1; }
	$(UV) sync --frozen --quiet --extra dev --python "$(PYTHON)"
	touch $(STAMP)

# checkov pins boto3, botocore, packaging and networkx below our pins, so it cannot share .venv:
# uv.lock resolves it as the `checkov` group (declared conflicting with every extra), installed
# alone into its own venv. infra/checkov_findings.py runs it there, offline.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
$(CHECKOV_STAMP): pyproject.toml uv.lock | $(STAMP)
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/$(CHECKOV_VENV) $(UV) sync --frozen --quiet --only-group checkov --python "$(PYTHON)"
	touch $(CHECKOV_STAMP)

# Re-resolve after editing pyproject.toml, then export the layers' and the job's pins.
lock: $(UV) | python
	$(UV) lock
	"$(PYTHON)" -m layers.lock_export

# CDK runs jsii on the machine's Node; keep it quiet and offline.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := 1
STAGE ?= dev
CDK := node_modules/.bin/cdk

demo: $(STAMP)
	$(BIN)/lambdaserve demo

# Every wheel the layer-building and training-image tests install, fetched once here, so the
# tests read no index.
WHEELHOUSE := .wheelhouse
$(WHEELHOUSE)/.complete: layers/requirements/*.txt training/requirements.txt training/framework-image.txt | $(STAMP)
	$(BIN)/python -m layers.wheelhouse --out $(WHEELHOUSE)
	touch $@

# AWS's Lambda Runtime Interface Emulator, pinned by the hash of the aws-sam-cli wheel that ships
# it (only the emulator binaries are kept): tests/runtime runs our functions under it, and
# `make bench` times their cold starts with it. No Docker.
EMULATOR := .lambda-rie
$(EMULATOR)/.complete: tests/runtime/lambda-rie.txt tests/runtime/extract_emulator.py | $(STAMP)
	rm -rf $(EMULATOR) && mkdir -p $(EMULATOR)/wheel
	$(BIN)/python -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
	    -r tests/runtime/lambda-rie.txt -d $(EMULATOR)/wheel
	$(BIN)/python tests/runtime/extract_emulator.py $(EMULATOR)
	rm -rf $(EMULATOR)/wheel
	touch $@

# The suite waits on servers, subprocesses and synths far more than it computes (one process
# used ~18% of a core): three workers on two cores took it from 13:19 to 7:08.
TEST_WORKERS ?= 3
test: $(STAMP) lint $(WHEELHOUSE)/.complete $(CHECKOV_STAMP) $(EMULATOR)/.complete
	LAMBDASERVE_WHEELHOUSE=$(CURDIR)/$(WHEELHOUSE) $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

lint: $(STAMP)
	$(UV) lock --check
	$(BIN)/python -m layers.lock_export --check
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

infra: $(STAMP) $(WHEELHOUSE)/.complete $(CHECKOV_STAMP)
	LAMBDASERVE_WHEELHOUSE=$(CURDIR)/$(WHEELHOUSE) $(BIN)/python -m pytest tests/infra

$(CDK): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $(CDK)

# Synthesizes every stack offline (layers built without Docker; cdk-nag fails on anything
# unexplained), then lints the templates: cfn-lint errors, and checkov findings that
# infra/checkov_acknowledgements.py does not explain.
synth: $(STAMP) $(CDK) $(CHECKOV_STAMP)
	rm -rf cdk.out
	$(CDK) synth --no-notices --quiet -c stage=$(STAGE)
	$(BIN)/cfn-lint --non-zero-exit-code error cdk.out/*.template.json
	$(BIN)/python -m infra.checkov_acknowledgements --stage $(STAGE) cdk.out/*.template.json

runtime: $(STAMP) $(WHEELHOUSE)/.complete $(EMULATOR)/.complete
	LAMBDASERVE_WHEELHOUSE=$(CURDIR)/$(WHEELHOUSE) $(BIN)/python -m pytest tests/runtime

bench: $(STAMP) $(WHEELHOUSE)/.complete $(EMULATOR)/.complete
	LAMBDASERVE_WHEELHOUSE=$(CURDIR)/$(WHEELHOUSE) $(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(UV_DIR) $(WHEELHOUSE) $(EMULATOR) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache .hypothesis
