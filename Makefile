# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU torch wheels are not on PyPI's default index; these pins are served from local disk here.
TORCH  ?= torch==2.14.1 torchvision==0.29.1
STAMP  := $(VENV)/.crface-installed
DOCS_STAMP := $(VENV)/.crface-docs-installed

.PHONY: demo test lint format install bench docs facts clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/crface demo --out out/demo.png

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# One thread per process: on small shared machines torch's default thread pool made tests 2-10x
# slower (measured on the 2-core CI/dev machine); override with OMP_NUM_THREADS=N make test.
test: lint
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_rerank.py

$(DOCS_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install -q -e '.[docs]'
	touch $(DOCS_STAMP)

# The site from docs/ into site/; --strict turns every warning (broken link, bad docstring) into an error.
docs: $(DOCS_STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

# Regenerate the <!-- facts:... --> blocks of README.md and docs/ from the shipped weights and results/.
facts: $(STAMP)
	$(BIN)/python tools/doc_facts.py

clean:
	rm -rf $(VENV) out site build dist *.egg-info .pytest_cache .ruff_cache
