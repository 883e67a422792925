# XiaoKe — one entry point for users, the ML team, SREs and CI.
# `make run` runs the whole product; `make test` runs the tests. Both install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
export XIAOKE_DATA_DIR ?= $(CURDIR)/var
DATASETS ?= $(CURDIR)/../shared/datasets
STAMP := $(VENV)/.installed
# Never pull a CUDA torch: torch==2.13.0 is the CPU build (pinned in pyproject.toml).
PIP_EXTRAS ?= api,serving,training,export,dev

.PHONY: help setup services lint test test-unit test-integration e2e models run serve bench bench-quality \
        bench-serving bench-api bench-load bench-dialogs bench-answers test-faults validate-deploy frontend clean \
        test-frontend

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(PIP_EXTRAS)]"
	@touch $@

setup: $(STAMP) ## create .venv and install every extra (CPU torch only)

services: ## make sure MariaDB and Redis (used by integration tests) are running
	bash scripts/services.sh

lint: setup ## ruff + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test-unit: setup
	$(PY) -m pytest tests/unit -q

test-integration: setup services
	$(PY) -m pytest tests/integration -q

test-frontend: ## frontend: type check (vue-tsc), eslint and unit tests (vitest)
	DEPS_ONLY=1 bash scripts/build_frontend.sh
	cd frontend && npm run -s typecheck && npm run -s lint && npx --no-install vitest run

test: setup services lint test-frontend ## lint + unit + integration + frontend checks (+ browser e2e when chromium is present)
	$(PY) -m pytest tests -q -m "not perf and not faults and not gpu and not e2e" $(PYTEST_ARGS)
	@if command -v chromium >/dev/null 2>&1; then $(MAKE) --no-print-directory e2e-run; \
	else echo "[test] chromium not installed: browser tests skipped (make e2e installs it)"; fi

models: setup ## build the default model bundles (no-op when nothing changed)
	$(PY) -m training.build_models --store $(XIAOKE_DATA_DIR)/models

frontend: ## build the widget and the console (npm ci + vite build)
	bash scripts/build_frontend.sh

run: setup models frontend ## run API + inference server + widget on 127.0.0.1:8000
	bash scripts/run.sh

serve: setup models ## run only the inference server (Ray Serve CPU profile) on 127.0.0.1:8001
	bash scripts/serve.sh cpu

e2e: setup ## browser tests (Debian chromium) against the real stack: Ray Serve + API + Redis, private netns
	bash scripts/ensure_tools.sh
	@$(MAKE) --no-print-directory e2e-run

.PHONY: e2e-run
e2e-run: # build the widget + console, then one pytest session inside a private network namespace
	bash scripts/build_frontend.sh
	XIAOKE_E2E_SKIP_BUILD=1 scripts/in_netns.sh $(PY) -m pytest tests/e2e -q -m e2e $(E2E_ARGS)

bench: bench-quality bench-serving bench-api ## every benchmark

bench-quality: setup ## model quality on ../shared/datasets (writes benchmarks/results/quality.json)
	$(PY) -m training.benchmarks all --datasets $(DATASETS) --out benchmarks/results/quality.json

bench-serving: setup models ## serving throughput/latency (writes benchmarks/results/serving.json)
	$(PY) -m benchmarks.serving --out benchmarks/results/serving.json

bench-api: setup models ## whole-stack turns/s, 64 visitors, private netns (writes benchmarks/results/api.json)
	$(PY) -m benchmarks.api --out benchmarks/results/api.json $(BENCH_ARGS)

bench-answers: setup models ## answer-directly rate and precision on the FAQ held-out queries, real bundles (writes benchmarks/results/answers.json)
	$(PY) -m benchmarks.answers --out benchmarks/results/answers.json

bench-dialogs: setup models ## the demo dialogs through API + Ray Serve on the real bundles (writes benchmarks/results/dialogs.json)
	$(PY) -m benchmarks.dialogs --out benchmarks/results/dialogs.json

SOAK_MINUTES ?= 3
bench-load: setup models ## steady load / soak, RSS growth (SOAK_MINUTES=3; writes benchmarks/results/load.json)
	$(PY) -m benchmarks.load --soak-minutes $(SOAK_MINUTES) --out benchmarks/results/load.json $(BENCH_ARGS)

test-faults: setup ## fault injection on the whole stack in a private netns (~4 min; marker faults)
	bash scripts/in_netns.sh $(PY) -m pytest tests/faults -m faults -q -s -p no:cacheprovider $(PYTEST_ARGS)

validate-deploy: setup ## hadolint, compose schema, kustomize + k8s schemas, RayService CRD schema
	$(PY) scripts/validate_deploy.py

clean:
	rm -rf $(VENV) var frontend/dist frontend/node_modules
