# glm-relay: set-up, checks, local runs and the SAM build. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
# Lambda runs python3.12, so the venv uses 3.12 when there is one (pyenv: PYENV_VERSION puts its
# 3.12 on PATH), else python3. Override with `make PYTHON=/path/to/python3.12 ...`.
PYTHON ?= $(shell PYENV_VERSION=3.11.7:3.12.1 python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null || command -v python3)
STAMP := $(VENV)/.requirements.stamp

# Directories that hold Python code (some appear only as the project grows).
has_py = $(if $(shell find $(1) -name '*.py' -print -quit 2>/dev/null),$(1))
LINT_DIRS := $(foreach d,functions mock_upstream devtools tests bench,$(call has_py,$(d)))
TYPE_DIRS := $(foreach d,functions/relay/glm_relay mock_upstream devtools bench,$(call has_py,$(d)))

SAM := SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam
BUILD_DIR := .aws-sam/build/RelayFunction
EVENT ?= events/get-chat.json

# The package's compiled wheels (cryptography) follow the function's processor, the template's
# Architecture: make sam-build LAMBDA_ARCHITECTURE=x86_64 (functions/relay/Makefile reads it).
sam-build: export LAMBDA_ARCHITECTURE ?= arm64

# The dev tools and benchmarks import the Lambda package from its source directory.
run invoke bench: export PYTHONPATH := functions/relay:.

.PHONY: help venv run test chromium lint typecheck pytest invoke bench sam-validate sam-build clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

venv: $(STAMP) ## Create .venv and install requirements-dev.txt (again whenever it changes)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' \
	  || echo "warning: $(VENV) is not Python 3.12; sam-build needs a python3.12" >&2

$(STAMP): requirements-dev.txt requirements-nodeps.txt functions/relay/requirements.txt | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	touch $@

run: venv ## Local stack as Lambda runs it: fake Zhipu, moto, the function URL (settings: docs/local-stack.md)
	$(VENV)/bin/python -m devtools.stack

test: venv chromium lint typecheck pytest sam-validate sam-build ## Everything CI checks (sets itself up first)

# The browser tests drive the system Chromium; install it when missing and we are allowed to.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing chromium with apt-get"; \
	    apt-get update -qq; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium </dev/null >/dev/null; \
	  else \
	    echo "warning: /usr/bin/chromium is missing (install it as root: apt-get install chromium)" >&2; \
	  fi; \
	fi

lint: venv ## ruff check, ruff format --check, and the package's layer rules (import-linter)
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/ruff format --check $(LINT_DIRS)
	PYTHONPATH=functions/relay $(VENV)/bin/lint-imports --no-cache

typecheck: venv ## mypy over the package, mock upstream, dev tools and benchmarks
	$(VENV)/bin/mypy $(TYPE_DIRS)

pytest: venv ## All of tests/ (extra arguments: make pytest ARGS='-k infra')
	$(VENV)/bin/python -m pytest $(ARGS)

invoke: venv ## One event through the Lambda emulator (make invoke EVENT=events/post-chat.json)
	$(VENV)/bin/python -m devtools.emulator --event $(EVENT)

bench: venv ## Benchmarks (print numbers; options: make bench ARGS="--only deployed --json out.json")
	$(VENV)/bin/python -m bench $(ARGS)

sam-validate: venv ## sam validate --lint on template.yaml
	$(SAM) validate --lint

# sam build runs functions/relay/Makefile, which builds with python3.12 from PATH and refuses any
# other version; the venv's interpreter is one. The checks after it are what the function needs
# at run time: the exec wrapper, executable, the page's HTML, bytecode Lambda's 3.12 reads, and the
# dependencies of requirements.txt (aws-sdk-signers: the DynamoDB client's signer).
sam-build: venv ## sam build into .aws-sam/ and check the artifact
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(SAM) build
	@test -x $(BUILD_DIR)/bootstrap \
	  || { echo "error: $(BUILD_DIR)/bootstrap is missing or not executable" >&2; exit 1; }
	@ls $(BUILD_DIR)/glm_relay/static/*.html >/dev/null 2>&1 \
	  || { echo "error: no glm_relay/static/*.html in $(BUILD_DIR)" >&2; exit 1; }
	@ls $(BUILD_DIR)/glm_relay/__pycache__/handler.cpython-312.pyc >/dev/null 2>&1 \
	  || { echo "error: no cpython-312 bytecode in $(BUILD_DIR)/glm_relay" >&2; exit 1; }
	@ls $(BUILD_DIR)/aws_sdk_signers/signers.py >/dev/null 2>&1 \
	  || { echo "error: aws_sdk_signers is missing from $(BUILD_DIR)" >&2; exit 1; }
	@echo "Artifact OK: $(BUILD_DIR) has an executable bootstrap, the static pages, 3.12 bytecode, aws-sdk-signers"

clean: ## Remove build output and tool caches (keeps .venv)
	rm -rf .aws-sam .mypy_cache .ruff_cache .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
