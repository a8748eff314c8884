# fpim: `make test` and `make demo` install whatever is missing, then run.
# Set-up is idempotent: on a machine that has everything it is a few file checks.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fpim-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: setup tools test demo lint clean

setup: tools $(STAMP)

# Verilator and Yosys from Debian, only when absent.
tools:
	@command -v verilator >/dev/null && command -v yosys >/dev/null || \
	  { echo "fpim setup: installing verilator and yosys (apt)"; \
	    $(SUDO) apt-get update && $(SUDO) apt-get install -y verilator yosys; }

# The venv; torch==2.13.0 (the local CPU build) strictly before the package.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

# The richest real job that exists so far; grows as the pipeline does.
demo: setup
	$(VENV)/bin/fpim formats --scheme sp2 --bits 4
	$(PY) bench/ref_gemm.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
