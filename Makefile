# Everything runs inside .venv, created from scratch with the exact pins of constraints.txt.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PIP := $(PY) -m pip install -q --disable-pip-version-check -c constraints.txt

.PHONY: setup setup-all demo demo-toy test test-slow bench bench-cli soak docs lint format clean

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

bench: $(STAMP)
	$(PY) benchmarks/run.py --out benchmarks/results

# how fast `gankit --help`, `--version` and argument errors answer (no torch import)
bench-cli: $(STAMP)
	$(PY) benchmarks/cli_startup.py --out benchmarks/results

# crash safety: every family killed (SIGKILL, also mid-checkpoint-write) and resumed, > 100 kills
# in all, each run's final checkpoint compared with an uninterrupted twin (docs/reliability.md)
soak: $(STAMP)
	$(PY) benchmarks/soak.py --out benchmarks/results/soak.json

# docs/configuration.md from the config dataclasses (tests/test_config_reference.py checks it)
docs: $(STAMP)
	$(PY) tools/config_reference.py

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests benchmarks tools
	$(VENV)/bin/ruff format src tests benchmarks tools

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
