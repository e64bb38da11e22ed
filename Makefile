# Aurora Chats API - every developer and CI use these targets.
# Bootstraps uv with pip when it is missing, then installs everything from uv.lock with Python 3.13.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
SAM_VERSION := 1.170.0
CFN_LINT_VERSION := 1.58.0
CFN_LINT_SERVERLESS_VERSION := 0.3.6
CHECKOV_VERSION := 3.3.30
# uv: the one on PATH if it runs (`uv --version`: a pyenv shim of another Python is on PATH but fails), as an absolute
# path, else one bootstrapped with pip into .tools/. Either way $(UV) is a file, so `| $(UV)` below always resolves.
UV_ON_PATH := $(shell uv --version >/dev/null 2>&1 && command -v uv)
UV := $(or $(UV_ON_PATH),$(CURDIR)/.tools/bin/uv)
# Python 3.13, found the standard ways (PYTHON313, `uv python find`, pyenv, PATH): scripts/find-python313.
# `make PYTHON313=/path/python3.13` (or the environment's PYTHON313) picks one; it is checked like the others.
# Evaluated on first use (after .tools/bin/uv may exist), then cached for the rest of the run.
PY313 = $(eval PY313 := $$(shell PYTHON313='$(PYTHON313)' $(CURDIR)/scripts/find-python313 $(UV)))$(PY313)
RUN := $(UV) run --locked --no-sync
SAM = PATH="$(dir $(PY313)):$$PATH" $(UV) tool run --python $(PY313) --from aws-sam-cli==$(SAM_VERSION) sam
PYTEST_ARGS ?=

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
	@command -v python3 >/dev/null || { echo "uv is not on PATH and there is no python3 to bootstrap it: install uv (https://docs.astral.sh/uv/)"; exit 1; }
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock | $(UV)
	@test -n "$(PY313)" || { echo "Python 3.13 not found (tried PYTHON313, uv python find, pyenv, PATH): set PYTHON313=/path/to/python3.13"; exit 1; }
	UV_PYTHON=$(PY313) $(UV) sync --locked
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
	$(RUN) mypy shared ops local functions tests bench/scale.py bench/load.py

.PHONY: lock
lock: install ## Re-lock and export the layer's requirements from uv.lock
	UV_PYTHON=$(PY313) $(UV) lock
	$(UV) export --frozen --no-dev --no-emit-project --no-hashes --format requirements-txt -o shared/requirements.txt

.PHONY: openapi
openapi: install ## Regenerate openapi.json from the code (commit it: make test fails when it drifts)
	$(RUN) python -m aurora_local.openapi --output openapi.json

.PHONY: lint-imports
lint-imports: install ## The import-linter contracts in pyproject.toml (the layer's floors, no cycles in local/)
	$(RUN) lint-imports --no-logo

# The scanners a platform team runs before a stack enters an account, pinned, each in its own tool environment (their
# dependencies never meet the project's lock). Every finding is fixed or suppressed next to its resource, with a reason.
UVX = $(UV) tool run --python $(PY313)

.PHONY: lint-iac
lint-iac: install ## cfn-lint + AWS's serverless rules, and checkov, on template.yaml
	$(UVX) --from cfn-lint==$(CFN_LINT_VERSION) --with cfn-lint-serverless==$(CFN_LINT_SERVERLESS_VERSION) \
	    cfn-lint template.yaml --append-rules cfn_lint_serverless.rules
	$(UVX) --from checkov==$(CHECKOV_VERSION) checkov --file template.yaml --framework cloudformation \
	    --skip-download --compact --quiet

.PHONY: test
test: lint typecheck lint-imports lint-iac ## Lint, types, import contracts, IaC scanners and the whole test suite
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
	PYTHON313=$(PY313) $(RUN) python -m bench.run $(BENCH_ARGS)

.PHONY: scale
scale: install ## Capacity model at 10k req/s: hottest partitions, character item, purge fan-out, cost (seconds, seeded)
	$(RUN) python bench/scale.py $(SCALE_ARGS)

.PHONY: load
load: install ## Loopback load test of make run's entry point: req/s, p50/p90/p99, zero 5xx, nothing lost
	$(RUN) python -m bench.load $(LOAD_ARGS)

.PHONY: bench-secret
bench-secret: install ## Cold-start cost of reading CURSOR_SECRET from Secrets Manager instead of the environment
	$(RUN) python bench/cursor_secret.py

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

.PHONY: sam-local-test
sam-local-test: install ## The real SAM CLI: sam local invoke of every events/*.json, start-api's routes (Docker, or root)
	@SAM_VERSION=$(SAM_VERSION) UV=$(UV) PY313=$(PY313) bash local/sam-local-test.sh

.PHONY: sam-start-api
sam-start-api: build ## sam local start-api on :3000 with make token's tokens (needs Docker and make run's DynamoDB)
	$(RUN) python -m aurora_local.sam_local derive .aws-sam/build/template.yaml .aws-sam/start-api/template.yaml
	$(SAM) local start-api -t .aws-sam/start-api/template.yaml --env-vars local/sam-env.json \
	    --add-host host.docker.internal:host-gateway --port $(PORT)

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

.PHONY: doctor
doctor: ## Print which uv and Python 3.13 the targets use
	@echo "uv:        $(UV) ($(if $(UV_ON_PATH),on PATH,bootstrapped into .tools/))"
	@echo "python3.13: $(or $(PY313),NOT FOUND - set PYTHON313=/path/to/python3.13)"
