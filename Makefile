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

demo: install
	$(BIN)/clinseg phantom head-oar $(DEMO)/HeadOAR --cases 16 --test-cases 6 --seed 0
	$(BIN)/clinseg validate $(DEMO)/HeadOAR

test: install
	$(PY) -m pytest

bench: install
	$(PY) bench/inference.py

clean:
	rm -rf $(DEMO) .pytest_cache
