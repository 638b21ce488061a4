# Every target installs what it needs: a .venv with awsctl and its test extras, and the
# local control-plane binaries (built once from the Go module proxy, cached in ~/.cache/awsctl).
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
PYTEST  := $(PY) -m pytest -p no:cacheprovider --durations=12

.PHONY: all venv cluster-tools crds lint format test test-unit test-aws test-e2e test-terraform bench demo dev-up dev-down clean

all: test

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

venv: $(STAMP)

cluster-tools: venv
	$(PY) -m awsctl.dev.tools

crds: venv
	$(PY) -m awsctl.api.crds

# ruff (lint and format) over the code, tests and benchmarks; mypy: strict over planning/, api/ and
# routing/, and the kopf handlers against kopf's protocols.
LINTED := awsctl tests benchmarks

lint: venv
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy

format: venv
	$(VENV)/bin/ruff check --fix $(LINTED)
	$(VENV)/bin/ruff format $(LINTED)

test-unit: venv
	$(PYTEST) tests/unit

test-aws: venv
	$(PYTEST) tests/aws

test-e2e: venv cluster-tools
	$(PYTEST) tests/e2e

test-terraform: venv
	$(PYTEST) tests/terraform

# Lint first, then every tier, in one pytest run so the closing line counts them all.
test: lint cluster-tools
	$(PYTEST) tests/unit tests/aws tests/e2e tests/terraform

# Every benchmark runs; the target fails afterwards if any of them missed a goal.
bench: venv cluster-tools
	@status=0; \
	$(PY) -m benchmarks.budget || status=1; \
	$(PY) -m benchmarks.rollouts || status=1; \
	$(PY) -m benchmarks.realism || status=1; \
	exit $$status

demo: venv cluster-tools
	$(VENV)/bin/awsctl demo

dev-up: venv cluster-tools
	$(VENV)/bin/awsctl dev up

dev-down: venv
	$(VENV)/bin/awsctl dev down

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
