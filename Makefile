# The README's commands. `make demo` runs the main job, `make test` the tests; both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MULTI30K ?= ../shared/data/multi30k
DEMO_MINUTES ?= 10
DEMO_DIR ?= outputs/demo
TEST_WORKERS ?= 2

.PHONY: setup demo test test-tutorials test-browser test-libretranslate docs bench bench-scale
setup: $(VENV)/.installed

# torch==2.13.0 first: the CPU build on this machine's disk, not a multi-GB CUDA build
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,interop]'
	touch $@

# prepare Multi30k de->en, train a GRU with attention for DEMO_MINUTES, translate test_2016_flickr
# with beam search (the checkpoint the run recommends: best.pt or avg.pt) and print BLEU / chrF
# with their sacreBLEU signatures
demo: setup
	$(BIN)/python -m nmt.prepare data.root=$(MULTI30K)
	$(BIN)/python -m nmt.train train.max_minutes=$(DEMO_MINUTES) hydra.run.dir=$(DEMO_DIR)
	$(BIN)/python -m nmt.translate ckpt=$(DEMO_DIR) translate.split=test decode=beam \
		plots.n_attention=3 hydra.run.dir=$(DEMO_DIR)/translate

# TEST_WORKERS processes (pytest-xdist); an idle worker takes tests from a busy one's queue
test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

# the notebooks under tutorials/, each executed in a Jupyter kernel (CI runs this after `make test`),
# one after the other: two notebooks training side by side on 2 cores take 7x as long (threads)
test-tutorials: setup
	$(BIN)/python -m pytest -m tutorials tests/tutorials --durations=0

# the page at GET / of nmt.serve in headless Chromium (Debian's package, installed here when
# missing: needs root) driven by Playwright; the screenshots are left in pytest's tmp folders
test-browser: setup
	command -v chromium >/dev/null || { apt-get update && apt-get install -y --no-install-recommends chromium; }
	$(BIN)/pip install --quiet -e '.[dev,browser]'
	$(BIN)/python -m pytest -m browser tests/inference/server/test_browser.py -s

# the real LibreTranslate server serving an exported nmt model (tests/interop/test_libretranslate.py).
# LibreTranslate gets its own environment: it pins numpy<2, flask and its own Argos fork (about 1 GB);
# spaCy splits sentences offline with the rules the package ships (rich<13: flask-limiter's pin)
LT_VENV := .venv-libretranslate
test-libretranslate: setup
	test -x $(LT_VENV)/bin/libretranslate || { $(PYTHON) -m venv $(LT_VENV) && \
		$(LT_VENV)/bin/pip install --quiet torch==2.13.0 && $(LT_VENV)/bin/pip install --quiet 'libretranslate>=1.6,<2' && \
		$(LT_VENV)/bin/pip install --quiet 'spacy>=3.7,<4' 'rich>=12,<13'; }
	NMT_LIBRETRANSLATE=$(LT_VENV)/bin/libretranslate $(BIN)/python -m pytest -m libretranslate tests/interop/test_libretranslate.py -s

# the docs made from the code: docs/config.md (the schema) and the import graph in docs/architecture.md;
# a test fails when they differ from what this writes
docs: setup
	$(BIN)/python docs/generate.py

bench: setup
	$(BIN)/python bench/prepare.py
	$(BIN)/python bench/batching.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/profile_step.py
	$(BIN)/python bench/translate.py
	$(BIN)/python bench/serve.py

# 10M pairs: about 15 minutes and 12 GB of disk under /tmp
bench-scale: setup
	$(BIN)/python bench/scale.py
