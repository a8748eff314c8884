# fpim: `make test` and `make demo` install whatever is missing, then run.
# Set-up is idempotent: on a machine that has everything it is a few file checks.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fpim-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=
# pytest-xdist workers (the suite is single-threaded Python and Verilator runs: two workers
# on two cores halve it). A test file stays on one worker, so its module fixtures run once;
# a Verilator build directory is locked while used (hw.tb.verilator.directory_lock).
JOBS ?= 2

.PHONY: setup tools test demo lint report clean

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
	$(PY) -m pytest -q -n $(JOBS) --dist loadfile $(PYTEST_ARGS)

# ruff, then the import layering (pyproject.toml [tool.importlinter]: quant -> sim -> hw -> fpim,
# no torch in quant's numpy core or the simulator).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# The whole pipeline on the embedded defaults (about 5 minutes on 2 cores). Outputs: build/demo/.
DEMO := build/demo
FPIM := $(VENV)/bin/fpim
demo: setup
	@echo "== 1/6 quantize ResNet-20 on digits, MSQ 4-bit (every layer fits a 4-bit engine)"
	$(FPIM) quantize --model resnet20 --data digits --scheme msq --bits 4 --sp2-fraction 0.5 \
	  --first-last-bits 0 --input-bits 4 --pool-extra-bits 0 --out $(DEMO)/artifact
	@echo "== 2/6 simulate it on the XC7Z020 preset (per-layer table, frame rate), outputs checked bit-exact"
	$(FPIM) simulate --artifact $(DEMO)/artifact --accel xc7z020 --functional \
	  --csv $(DEMO)/simulate.csv
	@echo "== 3/6 generate the tiny preset's Verilog"
	$(FPIM) rtl --accel tiny --out $(DEMO)/rtl
	@echo "== 4/6 synthesize it with Yosys (xc7)"
	$(FPIM) synth --accel tiny
	@echo "== 5/6 verify the RTL on Verilator: 24 random GEMMs, then every layer of the artifact on one DUT"
	$(FPIM) verify --accel tiny --cases 24 --artifact $(DEMO)/artifact --all-layers \
	  --json > $(DEMO)/verify.json.tmp && mv $(DEMO)/verify.json.tmp $(DEMO)/verify.json
	@$(PY) -c "import json; d = json.load(open('$(DEMO)/verify.json')); \
	  g = [c for c in d['cases'] + d['layers'] if 'cycles_rtl' in c]; \
	  eq = sum(c['cycles_rtl'] == c['cycles_sim'] for c in g); \
	  print(f\"verify: {d['passed']} passed, {d['failed']} failed, cycles equal in {eq}/{len(g)} GEMMs, \" \
	        f\"logits identical: {d['logits_equal']}\")"
	@echo "== 6/6 the same artifact on PIM macros"
	$(FPIM) pim simulate --artifact $(DEMO)/artifact --macro sram512x128_adc7
	@echo "demo outputs: $(DEMO)/artifact (integer model), $(DEMO)/simulate.csv (per layer),"
	@echo "  $(DEMO)/rtl (Verilog + manifest), $(DEMO)/verify.json (per-case cycles_sim/cycles_rtl),"
	@echo "  build/fastrtl/ (Verilator model of the fast harness)"

# The checked-in reference reports (docs/report.md), next to reports/reference/resource_calibration.md:
# the shipped artifact (and its PIM energy) and ResNet-50 on XC7Z020, the MSQ search for ResNet-18.
# Deterministic: a second run changes no file.
REFERENCE := reports/reference
report: setup
	$(FPIM) report --artifact configs/artifacts/cnn_msq4_digits --accel xc7z020 \
	  --pim sram512x128_adc7 --out $(REFERENCE)/cnn_msq4_digits_xc7z020
	$(FPIM) report --model resnet50 --accel xc7z020 --out $(REFERENCE)/resnet50_xc7z020
	$(FPIM) report --search msq --accel xc7z020 --bits 4 --model resnet18 \
	  --out $(REFERENCE)/msq4_resnet18_xc7z020

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
