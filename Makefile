# Two entry points, each doing its own set-up on a fresh machine:
#   make run   — create .venv, install, train the default model on the embedded digits offline, print the metrics
#   make test  — create .venv with the dev extras, lint, run the whole test suite
# Real data, offline (Fashion-MNIST from Debian's package; see README "Real data without internet"):
#   make data           — install dataset-fashion-mnist (as root; skipped when its files are there)
#   make fashion-mnist  — small CNN + uGMM head on Fashion-MNIST, evaluated on every offline OOD set
#   make transfer       — pretrain resnet10t on classes 0–4, fine-tune it with a uGMM head on classes 5–9
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch and torchvision pinned to the builds that lie on this machine's disk (pip takes them without downloading).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
PIP_INSTALL := $(BIN)/python -m pip install --quiet --progress-bar off
CONFIG ?= configs/digits.yaml
OUT ?= outputs/digits

FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist
EVALUATE_FAST := --shift false  # the OOD sets, calibration and temperature scaling; corruption shift left out

.PHONY: run test lint clean data fashion-mnist transfer

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

data:
	@if [ -f $(FASHION_MNIST_DIR)/t10k-labels-idx1-ubyte.gz ]; then \
		echo "Fashion-MNIST is installed in $(FASHION_MNIST_DIR)"; \
	else \
		apt-get update && apt-get install -y dataset-fashion-mnist; \
	fi

fashion-mnist: data $(VENV)/.run-installed
	$(BIN)/python -m ugmm_vision.data.photo_patches data/ood/photo_patches
	$(BIN)/ugmm-vision fit --config configs/fashion_mnist.yaml
	$(BIN)/ugmm-vision evaluate --config configs/fashion_mnist.yaml --ckpt_path outputs/fashion_mnist/checkpoints/best.ckpt \
		--output_dir outputs/fashion_mnist/report $(EVALUATE_FAST)

transfer: data $(VENV)/.run-installed
	$(BIN)/ugmm-vision pretrain --config configs/pretrain_fashion_mnist.yaml
	$(BIN)/ugmm-vision fit --config configs/finetune_timm.yaml
	$(BIN)/ugmm-vision evaluate --config configs/finetune_timm.yaml --ckpt_path outputs/finetune_timm/checkpoints/best.ckpt \
		--output_dir outputs/finetune_timm/report $(EVALUATE_FAST)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) outputs lightning_logs .pytest_cache .ruff_cache
