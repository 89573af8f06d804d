# The README's commands. `make demo` runs the main job, `make test` the tests; both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MULTI30K ?= ../shared/data/multi30k

.PHONY: setup demo test bench
setup: $(VENV)/.installed

# torch==2.13.0 first: the CPU build on this machine's disk, not a multi-GB CUDA build
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/python -m nmt.prepare data.root=$(MULTI30K)

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/prepare.py
	$(BIN)/python bench/batching.py
