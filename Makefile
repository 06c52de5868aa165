# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first, pinned: the CPU wheel on local disk (a bare `torch` could pull a CUDA build).
TORCH := torch==2.13.0
# Beside a checkout with ../shared (development, CI), use the real data there.
ifneq ($(wildcard ../shared/data),)
export MNIST_CNN_DATA ?= $(abspath ../shared/data)
endif

.PHONY: run test lint bench clean

$(BIN)/mnist-cnn: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# Extra flags for `make run`, e.g. TRAIN_FLAGS=--overwrite to train runs/lesson again.
TRAIN_FLAGS ?=

run: $(BIN)/mnist-cnn  ## train the lesson's CNN, evaluate it, save the run under runs/
	$(BIN)/mnist-cnn train --out runs/lesson $(TRAIN_FLAGS)

test: $(BIN)/mnist-cnn  ## the linter, then the whole test suite
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

lint: $(BIN)/mnist-cnn
	$(BIN)/ruff check src tests benchmarks

bench: $(BIN)/mnist-cnn
	$(BIN)/mnist-cnn bench

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
