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

.PHONY: install demo study study-localise study-bone study-brain study-oar study-oar-lens study-multitask test bench bench-openkbp clean

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

# The learning-curve study of seed 000 in small (12 networks: sizes 1, 3, 7 x concentrated/distributed x 2
# repeats; ~1 hour on 2 CPU cores). Interrupt it at will: re-running resumes, finished runs are kept.
study: install
	@test -f $(DEMO)/HeadOAR-study/dataset.json || $(BIN)/clinseg phantom head-oar $(DEMO)/HeadOAR-study --cases 32 --test-cases 10 --seed 1
	$(BIN)/clinseg study run examples/study-head-oar.yaml --out $(DEMO)/study
	$(BIN)/clinseg study report $(DEMO)/study

# Localise to segment (seed 003) on the abdominal CT phantom: baseline vs two-stage vs ground-truth
# localisation, 2 repeats (~1 hour on 2 CPU cores); resumable like 'study'.
study-localise: install
	@test -f $(DEMO)/AbdomenCT/dataset.json || $(BIN)/clinseg phantom abdomen-ct $(DEMO)/AbdomenCT --cases 14 --test-cases 8 --seed 0
	$(BIN)/clinseg study run examples/study-abdomen-localise.yaml --out $(DEMO)/localise
	$(BIN)/clinseg study report $(DEMO)/localise

# Label-scarce strategies (seed 002) on the CT long-bone phantom: baseline vs restoration-pretrained vs
# click-guided interactive 2D U-Nets over 1, 2, 5, 10 training patients (~45 minutes); resumable.
study-bone: install
	@test -f $(DEMO)/CtBone/dataset.json || $(BIN)/clinseg phantom ct-bone $(DEMO)/CtBone --cases 14 --test-cases 6 --seed 0 --spacing 2
	$(BIN)/clinseg study run examples/study-bone-label-scarce.yaml --out $(DEMO)/bone
	$(BIN)/clinseg study report $(DEMO)/bone

# Seed 001's 2D-3D model vs a plain 3D and a plain 2D U-Net on the brain-tumour phantom, BRATS regions.
study-brain: install
	@test -f $(DEMO)/BrainTumour/dataset.json || $(BIN)/clinseg phantom brain-tumour $(DEMO)/BrainTumour --cases 16 --test-cases 6 --seed 0
	$(BIN)/clinseg study run examples/study-brain-2d3d.yaml --out $(DEMO)/brain-2d3d
	$(BIN)/clinseg study report $(DEMO)/brain-2d3d

# Seed 001's OAR pipeline (triplanar vote + anatomy rules) vs the raw axial model; voxel-level unknowns vs
# per-class masking with rarely delineated lenses (head-OAR phantom, the thesis' organ set).
study-oar: install
	@test -f $(DEMO)/HeadOARThesis/dataset.json || $(BIN)/clinseg phantom head-oar $(DEMO)/HeadOARThesis --structures seed001 --delineation-rate Lens=0.2 --cases 16 --test-cases 6 --seed 0
	$(BIN)/clinseg study run examples/study-head-oar-anatomy.yaml --out $(DEMO)/head-oar-anatomy
	$(BIN)/clinseg study report $(DEMO)/head-oar-anatomy

# Seed 001 §4.2.1.2: voxel-level unknowns (lens negative outside a delineated eye) vs per-class masking, lenses
# delineated in 7 of 16 training cases, 1 mm voxels, 4 seeds per arm, thresholds chosen on validation cases.
study-oar-lens: install
	@test -f $(DEMO)/HeadOARLens1mm/dataset.json || $(BIN)/clinseg phantom head-oar $(DEMO)/HeadOARLens1mm --structures seed001 --delineation-rate Lens=0.4 --cases 16 --test-cases 6 --seed 0 --spacing 1
	$(BIN)/clinseg study run examples/study-head-oar-lens-1mm-calibrated.yaml --out $(DEMO)/head-oar-lens-1mm-calibrated
	$(BIN)/clinseg study report $(DEMO)/head-oar-lens-1mm-calibrated

# Seed 004: one network for head-OAR MRI, abdominal CT and bone CT against single-task networks.
study-multitask: install
	@test -f $(DEMO)/HeadOAR/dataset.json || $(BIN)/clinseg phantom head-oar $(DEMO)/HeadOAR --cases 16 --test-cases 6 --seed 0
	@test -f $(DEMO)/AbdomenCT/dataset.json || $(BIN)/clinseg phantom abdomen-ct $(DEMO)/AbdomenCT --cases 14 --test-cases 8 --seed 0
	@test -f $(DEMO)/CtBone/dataset.json || $(BIN)/clinseg phantom ct-bone $(DEMO)/CtBone --cases 14 --test-cases 6 --seed 0 --spacing 2
	for task in head abdomen bone; do $(BIN)/clinseg study run examples/study-multitask-$$task.yaml --out $(DEMO)/multitask-$$task && $(BIN)/clinseg study report $(DEMO)/multitask-$$task || exit 1; done

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) bench/inference.py
	$(PY) bench/pretraining.py
	$(PY) bench/bitpack.py

# Real clinical data (seed 000's setting): OpenKBP head-and-neck CT, 163 training / 40 held-out patients, the
# masked loss vs undelineated OARs as background, each trained for a 30-minute CPU budget (~75 minutes in all
# with prediction and evaluation). Resumable: finished steps are kept. Writes $(DEMO)/bench-openkbp/report.md.
bench-openkbp: install
	$(PY) bench/openkbp.py --out $(DEMO)/bench-openkbp --time 30m

clean:
	rm -rf $(DEMO) .pytest_cache
