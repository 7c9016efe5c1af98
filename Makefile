# clinseg: one-command set-up. `make demo` runs the main job on the embedded phantom; `make test` runs the tests.
# Both create .venv when missing and are fast when everything is already installed.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# The CPU wheel of torch that lies on our machines' disk; never let pip pull a multi-GB CUDA build here.
# On a CUDA machine: install the CUDA torch into .venv first (see README), it is then kept.
TORCH_SPEC ?= torch==2.13.0
DEMO ?= demo

.PHONY: install demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch: | $(PY)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --disable-pip-version-check -q "$(TORCH_SPEC)"
	@touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(PY) -m pip install --disable-pip-version-check -q -e '.[test]'
	@touch $@

install: $(VENV)/.installed

# The main job end to end on the embedded phantom (~10 minutes on 2 CPU cores). Re-running it is quick:
# the phantom is kept when present, and a finished training run is not trained again.
demo: install
	@test -f $(DEMO)/HeadOAR/dataset.json || $(BIN)/clinseg phantom head-oar $(DEMO)/HeadOAR --cases 16 --test-cases 6 --seed 0
	$(BIN)/clinseg validate $(DEMO)/HeadOAR
	$(BIN)/clinseg train $(DEMO)/HeadOAR --out $(DEMO)/run --preset cpu-demo
	$(BIN)/clinseg predict $(DEMO)/run $(DEMO)/HeadOAR/imagesTs $(DEMO)/run/predictions --largest-component
	$(BIN)/clinseg evaluate $(DEMO)/run/predictions $(DEMO)/HeadOAR --out $(DEMO)/run/evaluation
	$(BIN)/clinseg report $(DEMO)/run

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) bench/inference.py

clean:
	rm -rf $(DEMO) .pytest_cache
