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
# `make token USER=bob`: USER is only taken from the command line (the shell's USER is the login name).
TOKEN_USER := $(if $(filter command line,$(origin USER)),$(USER),alice)
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
	$(RUN) mypy shared ops local functions tests

.PHONY: lock
lock: install ## Re-lock and export the layer's requirements from uv.lock
	$(UV) lock
	$(UV) export --frozen --no-dev --no-emit-project --no-hashes --format requirements-txt -o shared/requirements.txt

.PHONY: openapi
openapi: install ## Regenerate openapi.json from the code (commit it: make test fails when it drifts)
	$(RUN) python -m aurora_local.openapi --output openapi.json

.PHONY: lint-imports
lint-imports: install ## The import-linter contracts in pyproject.toml (the layer's floors, no cycles in local/)
	$(RUN) lint-imports --no-logo

.PHONY: test
test: lint typecheck lint-imports ## Lint, types, import contracts and the whole test suite
	$(RUN) pytest $(PYTEST_ARGS)

.PHONY: unit
unit: install ## Unit tests only: use cases and models on in-memory fakes, no moto, no sockets
	$(RUN) pytest tests/unit $(PYTEST_ARGS)

.PHONY: integration
integration: install ## Integration tests: the handlers and the data layer on moto (table from template.yaml)
	$(RUN) pytest tests/integration $(PYTEST_ARGS)

.PHONY: e2e
e2e: install ## End-to-end tests over HTTP through the local runtime (make run's entry point)
	$(RUN) pytest tests/e2e $(PYTEST_ARGS)

.PHONY: bench
bench: install ## Cold start, memory, warm overhead, DynamoDB cost, purge, req/s vs budgets -> bench/results.json
	PYTHON313=$(PYTHON313) $(RUN) python -m bench.run $(BENCH_ARGS)

.PHONY: validate
validate: install ## sam validate --lint (cfn-lint)
	$(SAM) validate --lint --region $(AWS_REGION)

# SharedLayer is a makefile build (shared/Makefile), and SAM tells a makefile nothing about the architecture: pass the
# BuildArchitecture of the template being built.
layer_arch = LAYER_ARCHITECTURE=$$(sed -n 's/^ *BuildArchitecture: *\([a-z0-9_]*\).*/\1/p' $(1) | head -n 1)

.PHONY: build
build: install ## sam build (the layer's requirements come from uv.lock)
	$(call layer_arch,template.yaml) $(SAM) build

# The deployable artifact (arm64, as the template says) and an x86_64 twin that this machine can import: a copy of
# the template with the architecture swapped, built from the same sources (--base-dir). One after the other and
# uncached: both builds share .aws-sam/smoke/build.toml and (with --cached) ./.aws-sam/deps, which concurrent builds
# would rewrite and clean from under each other.
SMOKE_DIR := $(CURDIR)/.aws-sam/smoke

.PHONY: smoke-build
smoke-build: install ## sam build the artifact for arm64 and x86_64 into .aws-sam/smoke/
	@mkdir -p $(SMOKE_DIR)
	sed -e 's/^\( *\)BuildArchitecture: arm64$$/\1BuildArchitecture: x86_64/' \
	    -e 's/^\( *\)\(Compatible\)\{0,1\}Architectures: \[arm64\]$$/\1\2Architectures: [x86_64]/' \
	    template.yaml > $(SMOKE_DIR)/template-x86_64.yaml
	$(call layer_arch,template.yaml) $(SAM) build --build-dir $(SMOKE_DIR)/arm64 > $(SMOKE_DIR)/build-arm64.log 2>&1 \
	    || { cat $(SMOKE_DIR)/build-arm64.log; exit 1; }
	$(call layer_arch,$(SMOKE_DIR)/template-x86_64.yaml) $(SAM) build --build-dir $(SMOKE_DIR)/x86_64 --template-file $(SMOKE_DIR)/template-x86_64.yaml --base-dir $(CURDIR) \
	    > $(SMOKE_DIR)/build-x86_64.log 2>&1 || { cat $(SMOKE_DIR)/build-x86_64.log; exit 1; }

.PHONY: smoke
smoke: smoke-build ## Import and invoke every built handler (layer + function only) on events/ against moto
	SMOKE_BUILT=1 $(RUN) pytest -q tests/integration/test_smoke_build.py

.PHONY: deploy
deploy: build ## sam deploy --guided (needs an AWS account)
	$(SAM) deploy --guided

.PHONY: run
run: install ## The API on http://127.0.0.1:3000 (PORT, DYNAMODB_PORT) with an embedded DynamoDB, no Docker
	PORT=$(PORT) DYNAMODB_PORT=$(DYNAMODB_PORT) $(RUN) python -m aurora_local run

.PHONY: token
token: install ## Print a local JWT: make token USER=alice [NAME=Alice] (the token is the last line)
	@$(RUN) python -m aurora_local token --user '$(TOKEN_USER)' $(if $(NAME),--name '$(NAME)')

.PHONY: invoke
invoke: install ## Run one function on one event: make invoke FUNCTION=ListChatsFunction EVENT=events/list_chats.json
	@test -n "$(FUNCTION)" -a -n "$(EVENT)" || { echo "usage: make invoke FUNCTION=ListChatsFunction EVENT=events/list_chats.json"; exit 2; }
	@DYNAMODB_PORT=$(DYNAMODB_PORT) $(RUN) python -m aurora_local invoke '$(FUNCTION)' '$(EVENT)'
