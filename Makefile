# Every target installs what it needs: a .venv with exactly the locked packages (requirements/lock.txt,
# hashes checked) and awsctl itself, and the local control-plane binaries (built once from the Go
# module proxy). Tools live outside the clone, keyed by version, in $(CACHE) (AWSCTL_CACHE_DIR).
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
PYTEST  := $(PY) -m pytest -p no:cacheprovider --durations=12
CACHE   ?= $(or $(AWSCTL_CACHE_DIR),$(HOME)/.cache/awsctl)
PYTHON  ?= python3
# pytest-xdist workers, each with its own control plane and moto: the e2e stories mostly wait on AWS's
# timers, so two share 2 cores well. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2

# uv installs the lock: pinned in requirements/uv.txt (with its wheels' hashes) and installed once per
# version by pip into its own small venv under the cache.
UV_VERSION := $(shell sed -n 's/^uv==\([^ ]*\).*/\1/p' requirements/uv.txt)
UV      := $(CACHE)/uv-$(UV_VERSION)/bin/uv
LOCK    := requirements/lock.txt
COMPILE := $(UV) pip compile -q --universal --generate-hashes --python-version 3.11

.PHONY: all venv lock cluster-tools crds lint format test test-unit test-aws test-e2e test-terraform bench demo dev-up dev-down clean

all: test

# Keyed by version (its path names it), not by the file's time: a fresh clone reuses the cached tool.
$(UV):
	rm -rf $(CACHE)/uv-$(UV_VERSION)
	$(PYTHON) -m venv $(CACHE)/uv-$(UV_VERSION)
	$(CACHE)/uv-$(UV_VERSION)/bin/pip install -q --require-hashes --no-deps -r requirements/uv.txt
	touch $@

# The venv is made anew whenever the lock or pyproject.toml changes: exactly the locked set, nothing
# left over from an older one. awsctl goes in editable, built by the locked setuptools.
$(STAMP): $(LOCK) pyproject.toml | $(UV)
	rm -rf $(VENV)
	$(UV) venv -q --python $(PYTHON) $(VENV)
	$(UV) pip sync -q --python $(PY) --require-hashes $(LOCK)
	$(UV) pip install -q --python $(PY) --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)

# Refreshes the lock on purpose (the newest versions pyproject.toml allows), installs it, and re-runs
# what is generated from the installed packages: the trimmed botocore models and the CRDs.
# requirements/runtime.txt is the operator image's subset, at the same versions.
lock: $(UV)
	$(COMPILE) --upgrade --extra test -o $(LOCK) pyproject.toml requirements/build.in
	$(COMPILE) -c $(LOCK) -o requirements/runtime.txt pyproject.toml requirements/build.in
	$(MAKE) venv
	$(PY) -m awsctl.aws.service_models
	$(PY) -m awsctl.api.crds

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
	$(PYTEST) -n $(TEST_WORKERS) tests/e2e

test-terraform: venv
	$(PYTEST) tests/terraform

# Lint first, then every tier, in one pytest run so the closing line counts them all.
test: lint cluster-tools
	$(PYTEST) -n $(TEST_WORKERS) tests/unit tests/aws tests/e2e tests/terraform

# Every benchmark runs; the target fails afterwards if any of them missed a goal.
bench: venv cluster-tools
	@status=0; \
	$(PY) -m benchmarks.budget || status=1; \
	$(PY) -m benchmarks.rollouts || status=1; \
	$(PY) -m benchmarks.realism || status=1; \
	$(PY) -m benchmarks.gates || status=1; \
	$(PY) -m benchmarks.dataplane || status=1; \
	$(PY) -m benchmarks.nlbplane || status=1; \
	$(PY) -m benchmarks.routes || status=1; \
	$(PY) -m benchmarks.propagation || status=1; \
	exit $$status

demo: venv cluster-tools
	$(VENV)/bin/awsctl demo

dev-up: venv cluster-tools
	$(VENV)/bin/awsctl dev up

dev-down: venv
	$(VENV)/bin/awsctl dev down

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
