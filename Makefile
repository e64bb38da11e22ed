# Aurora Chats API - every developer and CI use these targets.
# Bootstraps uv with pip when it is missing, then installs everything from uv.lock with Python 3.13.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON313 ?= $(firstword $(wildcard /root/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13 2>/dev/null))
UV_VERSION := 0.13.8
SAM_VERSION := 1.170.0
UV := $(shell uv --version >/dev/null 2>&1 && echo uv || echo $(CURDIR)/.tools/bin/uv)
RUN := $(UV) run --locked --no-sync
SAM := PATH="$(dir $(PYTHON313)):$$PATH" $(UV) tool run --python $(PYTHON313) --from aws-sam-cli==$(SAM_VERSION) sam
PYTEST_ARGS ?=

export UV_PYTHON := $(PYTHON313)
export SAM_CLI_TELEMETRY := 0
export AWS_REGION ?= us-east-1
export AWS_DEFAULT_REGION ?= us-east-1

PORT ?= 3000
DYNAMODB_PORT ?= 8000
USER ?= alice
NAME ?=

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock | $(UV)
	@test -n "$(PYTHON313)" || { echo "Python 3.13 not found: set PYTHON313=/path/to/python3.13"; exit 1; }
	$(UV) sync --locked
	@touch $@

.PHONY: install
install: .venv/.synced ## Install the locked dependencies into .venv

.PHONY: lint
lint: install ## ruff check + ruff format --check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

.PHONY: fmt
fmt: install ## Format and autofix
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

.PHONY: typecheck
typecheck: install ## mypy --strict
	$(RUN) mypy shared local functions tests

.PHONY: lock
lock: install ## Re-lock and export the layer's requirements from uv.lock
	$(UV) lock
	$(UV) export --frozen --no-dev --no-emit-project --no-hashes --format requirements-txt -o shared/requirements.txt

.PHONY: test
test: lint typecheck ## Lint, types and the whole test suite
	$(RUN) pytest $(PYTEST_ARGS)

.PHONY: validate
validate: install ## sam validate --lint (cfn-lint)
	$(SAM) validate --lint --region $(AWS_REGION)

.PHONY: build
build: install ## sam build (the layer's requirements come from uv.lock)
	$(SAM) build

.PHONY: deploy
deploy: build ## sam deploy --guided (needs an AWS account)
	$(SAM) deploy --guided
