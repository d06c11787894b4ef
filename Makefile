# Two entry points, each doing its own set-up on a fresh machine:
#   make run   — create .venv, install, train the default model on the embedded digits offline, print the metrics
#   make test  — create .venv with the dev extras, lint, run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch and torchvision pinned to the builds that lie on this machine's disk (pip takes them without downloading).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
PIP_INSTALL := $(BIN)/python -m pip install --quiet --progress-bar off
CONFIG ?= configs/digits.yaml
OUT ?= outputs/digits

.PHONY: run test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) $(TORCH_PINS) -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) $(TORCH_PINS) -e ".[dev]"
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/ugmm-vision fit --config $(CONFIG)
	$(BIN)/ugmm-vision evaluate --config $(CONFIG) --ckpt_path $(OUT)/checkpoints/best.ckpt --output_dir $(OUT)/report

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) outputs lightning_logs .pytest_cache .ruff_cache
