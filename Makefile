# Everything runs inside .venv, created from scratch with the exact pins of constraints.txt.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PIP := $(PY) -m pip install -q --disable-pip-version-check -c constraints.txt

.PHONY: setup demo demo-toy test test-slow bench lint format clean

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP) torch==2.13.0            # first: keeps pip from resolving a multi-GB CUDA build
	$(PIP) setuptools wheel
	$(PIP) --no-build-isolation -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# conditional GAN on MNIST: data into the cache, evaluation classifier (once), ~10 min of training
demo: $(STAMP)
	$(VENV)/bin/gankit data fetch mnist
	$(VENV)/bin/gankit train classifier --data mnist reuse=true
	$(VENV)/bin/gankit train cgan --data mnist

demo-toy: $(STAMP)
	$(VENV)/bin/gankit train wgan-gp --data 8gaussians

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/pytest -q

test-slow: $(STAMP)
	$(VENV)/bin/pytest -q -m slow

bench: $(STAMP)
	$(PY) benchmarks/run.py --out benchmarks/results

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
