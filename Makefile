# Everything runs inside .venv, created from scratch with the exact pins of constraints.txt.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PIP := $(PY) -m pip install -q --disable-pip-version-check -c constraints.txt

.PHONY: setup setup-all demo demo-toy test test-slow bench bench-mfu bench-cli bench-quality bench-streaming bench-ddp soak soak-ddp docs lint format clean

# torch goes in first, at the pinned version, so that resolving the other dependencies cannot
# pull in a different torch build (on Linux, PyPI's default torch wheel is the multi-GB CUDA
# one). On a CPU-only Linux machine, put the CPU build of that version in first (it satisfies
# the pin, so `make setup` keeps it):
#   python3 -m venv .venv
#   .venv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP) torch==2.13.0            # first, at the pin: see the note above
	$(PIP) setuptools wheel
	$(PIP) --no-build-isolation -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# the optional extras too (gankit serve, ONNX export, the Selenium browser tests); their tests
# skip with one line without them. The browser tests also need Chromium: on Debian,
# apt-get install chromium chromium-driver
setup-all: $(STAMP)
	$(PIP) --no-build-isolation -e '.[dev,serve,onnx,browser]'

# conditional GAN on MNIST: data into the cache, evaluation classifier (once), ~10 min of training
demo: $(STAMP)
	$(VENV)/bin/gankit data fetch mnist
	$(VENV)/bin/gankit train classifier --data mnist reuse=true
	$(VENV)/bin/gankit train cgan --data mnist

demo-toy: $(STAMP)
	$(VENV)/bin/gankit train wgan-gp --data 8gaussians

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks tools
	$(VENV)/bin/ruff format --check src tests benchmarks tools
	$(VENV)/bin/pytest -q

test-slow: $(STAMP)
	$(VENV)/bin/pytest -q -m slow

# gankit against plain eager PyTorch, every preset, interleaved rounds (CycleGAN-128 takes
# longest; shorter: make bench BENCH_ARGS="--only discogan-64 --rounds 1 --scale 0.5"):
# benchmarks/results/side-by-side.json, table in docs/benchmarks.md
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) benchmarks/side_by_side.py --out benchmarks/results/side-by-side.json $(BENCH_ARGS)

# MFU, kernel share, peak RSS and toy time-to-quality of every preset: benchmarks/results/bench.json
bench-mfu: $(STAMP)
	$(PY) benchmarks/run.py --out benchmarks/results

# how fast `gankit --help`, `--version` and argument errors answer (no torch import)
bench-cli: $(STAMP)
	$(PY) benchmarks/cli_startup.py --out benchmarks/results

# torchrun: 2 processes x 1 thread with a global batch 2B against 1 process with batch B, per core
bench-ddp: $(STAMP)
	$(PY) benchmarks/ddp.py --out benchmarks/results/ddp.json

# CycleGAN 128 px on a streamed vs an in-memory folder of 20,000 generated JPEGs (made once in
# the temp dir), and memory of streaming 2,000 vs 20,000 images (docs/benchmarks.md)
bench-streaming: $(STAMP)
	$(PY) benchmarks/streaming.py --out benchmarks/results/streaming.json

# fp32 vs bf16 time to quality, each seed's two runs side by side (one thread each, nice -n 5);
# ~2 h on a free machine: toy 3 seeds, cGAN 2, CycleGAN 1 (docs/benchmarks.md "bf16 time to quality")
TQ_RUNS ?= /tmp/tq-runs
bench-quality: $(STAMP)
	$(PY) benchmarks/time_to_quality.py toy --seeds 0 1 2 --runs $(TQ_RUNS)
	$(PY) benchmarks/time_to_quality.py cgan --seeds 0 1 --runs $(TQ_RUNS)
	$(VENV)/bin/gankit train classifier --data digits2colour reuse=true
	$(PY) benchmarks/time_to_quality.py cyclegan --seeds 0 --runs $(TQ_RUNS)

# crash safety: every family killed (SIGKILL, also mid-checkpoint-write) and resumed, > 100 kills
# in all, each run's final checkpoint compared with an uninterrupted twin (docs/reliability.md)
soak: $(STAMP)
	$(PY) benchmarks/soak.py --out benchmarks/results/soak.json

# the same under torchrun: 2 processes x 1 thread per launch, whole-tree and single-worker SIGKILLs,
# SIGINT/SIGTERM to the agent, orphan workers counted (docs/reliability.md)
soak-ddp: $(STAMP)
	$(PY) benchmarks/soak.py --processes 2 --families gan,wgan-gp,cgan,cyclegan --kills-per-run 10 \
		--out benchmarks/results/soak-ddp.json

# docs/configuration.md from the config dataclasses (tests/test_config_reference.py checks it)
docs: $(STAMP)
	$(PY) tools/config_reference.py

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests benchmarks tools
	$(VENV)/bin/ruff format src tests benchmarks tools

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
