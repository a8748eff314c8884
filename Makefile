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

# The richest real job that exists so far; grows as the pipeline does. Outputs: build/demo/.
DEMO := build/demo
FPIM := $(VENV)/bin/fpim
demo: setup
	@echo "== 1/5 quantize ResNet-20 on digits, MSQ 4-bit (every layer fits a 4-bit engine)"
	$(FPIM) quantize --model resnet20 --data digits --scheme msq --bits 4 --sp2-fraction 0.5 \
	  --first-last-bits 0 --input-bits 4 --pool-extra-bits 0 --out $(DEMO)/artifact
	@echo "== 2/5 simulate it on the XC7Z020 preset, outputs checked bit-exact"
	$(FPIM) simulate --artifact $(DEMO)/artifact --accel xc7z020 --functional \
	  --csv $(DEMO)/simulate.csv
	@echo "== 3/5 generate the tiny preset's Verilog"
	$(FPIM) rtl --accel tiny --out $(DEMO)/rtl
	@echo "== 4/5 synthesize it with Yosys (xc7)"
	$(FPIM) synth --accel tiny
	@echo "== 5/5 the same artifact on PIM macros"
	$(FPIM) pim simulate --artifact $(DEMO)/artifact --macro sram512x128_adc7
	@echo "demo outputs: $(DEMO)/artifact (integer model), $(DEMO)/simulate.csv (per layer), $(DEMO)/rtl (Verilog)"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
