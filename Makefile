# mricourse -- every target installs what it needs into .venv from the exact lock first.
#   make test   ruff, unit tests, notebooks (smoke profile) under nbval, the book with -W
#   make book   the whole book, notebooks executed in the default profile -> _build/html
#   make bench  every chapter in the cpu profile, fresh kernels -> results.md, results.json
#   make lab    JupyterLab on the notebooks;   make clean   remove builds and the venv

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(wildcard notebooks/*.ipynb)
export PYTHONHASHSEED := 0

.PHONY: install test lint unit nbval book-check book bench lab clean lock

install: $(STAMP)

$(STAMP): requirements/lock.txt requirements/nodeps.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements/lock.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements/nodeps.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check --output-format concise .

unit: $(STAMP)
	$(BIN)/python -m pytest tests

nbval: $(STAMP)
ifneq ($(NOTEBOOKS),)
	MRICOURSE_PROFILE=smoke MRICOURSE_RESULTS=_build/smoke/results $(BIN)/python -m pytest -p no:cacheprovider \
	  --nbval-lax --nbval-cell-timeout=600 $(NOTEBOOKS)
endif

book-check: $(STAMP)
	MRICOURSE_PROFILE=smoke MRICOURSE_RESULTS=_build/smoke/results $(BIN)/jupyter-book build . -W --keep-going \
	  --path-output _build/smoke

test: lint unit nbval book-check

book: $(STAMP)
	$(BIN)/jupyter-book build .
	@# the results page is read before the chapters; rebuild it from the files they just wrote
	touch book/results.ipynb
	$(BIN)/jupyter-book build .

bench: $(STAMP)
	$(BIN)/python -m mricourse.bench --profile cpu

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -viE '^(fastmri|voxelmorph|neurite|pystrum)==' > requirements/lock.txt

clean:
	rm -rf _build $(VENV) .pytest_cache .ruff_cache student *.egg-info
