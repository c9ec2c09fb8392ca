# voxstack: the two set-up commands are `make dev` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Extras installed into the development venv; services add theirs as they land.
EXTRAS ?= dev,test,asr,llm,tts,core
# llama-cpp-python has no binary wheel on the index: it is built once per
# machine (about 5 minutes) into this wheelhouse and installed from there.
WHEELHOUSE ?= $(HOME)/.cache/voxstack/wheels
LLAMA_CPP := llama-cpp-python>=0.3.8
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: help venv models test lint format proto proto-check dev up down bench clean

help:
	@echo "make dev    set up .venv and run the stack in development mode"
	@echo "make test   set up .venv, lint, and run the test suite with coverage"
	@echo "make up     run the stack in production mode, in the background"
	@echo "make down   stop whatever runs (up or dev)"
	@echo "make proto  regenerate the gRPC stubs from proto/"
	@echo "make bench  run the benchmarks (table + bench/results/latest.json)"
	@echo "make lint   ruff check and format check"
	@echo "make clean  remove .venv and caches"

# Re-installs when pyproject.toml changes; the stamp names the extras installed.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@mkdir -p $(WHEELHOUSE)
	@ls $(WHEELHOUSE)/llama_cpp_python-*.whl >/dev/null 2>&1 || { \
	  echo "building llama-cpp-python once (about 5 minutes), cached in $(WHEELHOUSE)"; \
	  $(PY) -m pip wheel --quiet --no-deps '$(LLAMA_CPP)' -w $(WHEELHOUSE); }
	$(PY) -m pip install --quiet --prefer-binary --find-links $(WHEELHOUSE) -e '.[$(EXTRAS)]'
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(PY) -m pytest --cov=voxstack --cov-report=term $(PYTEST_ARGS)

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
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .coverage .coverage.* htmlcov
