# mricourse -- every target installs what it needs into .venv from the exact lock first.
#   make test   the repository checks (meta), ruff, unit tests, notebooks (smoke profile) under nbval,
#               the Colab path (colab-check), the student versions (smoke profile), the book with -W,
#               and the browser check of the built book
#   make meta   actionlint on .github/workflows/*.yml and cffconvert --validate on CITATION.cff
#               (tools pinned in requirements/tools.txt, in their own venv .venv-tools)
#   make book   the whole book, notebooks executed in the default profile -> _build/html
#   make bench  every chapter in the cpu profile, fresh kernels -> results.md, results.json
#   make colab-check every chapter (smoke) after the notebooks' own install cell, in a cached
#               Colab-like environment (requirements/colab.txt: ipywidgets 7.7, numpy 2, ...)
#   make oldest the unit tests on the oldest versions pyproject.toml admits (requirements/oldest.txt), in .venv-oldest
#   make weights     the long-run weights: each listed recipe trained longer (cpu, at most 40 min a model),
#               resumable, written with their manifests into mricourse/weights/ (mc.pretrained loads them)
#   make student     student versions of the notebooks -> student/ (instructor versions -> instructor/)
#   make check-book  build the smoke book and open every page in headless Chromium
#   make lab    JupyterLab on the notebooks;   make clean   remove builds and the venv

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TOOLS  := .venv-tools
NOTEBOOKS := $(wildcard notebooks/*.ipynb)
export PYTHONHASHSEED := 0
# PyTorch's OpenMP threads wait passively: spinning threads slow everything down when the cores are
# shared (tests, long runs side by side); not for make bench, which measures idle cores
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install meta test lint unit nbval colab-check oldest book-check book bench lab clean lock student student-check check-book browser weights speed

install: $(STAMP)

$(STAMP): requirements/lock.txt requirements/nodeps.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements/lock.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements/nodeps.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# the repository's own checks, with tools that cannot share .venv (cffconvert needs jsonschema<4)
$(TOOLS)/.installed: requirements/tools.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q -r requirements/tools.txt
	touch $@

meta: $(TOOLS)/.installed
	$(TOOLS)/bin/actionlint -shellcheck=$(TOOLS)/bin/shellcheck -pyflakes= .github/workflows/*.yml
	$(TOOLS)/bin/cffconvert --validate -i CITATION.cff

lint: $(STAMP)
	$(BIN)/ruff check --output-format concise .

unit: $(STAMP)
	$(BIN)/python -m pytest tests

nbval: $(STAMP)
ifneq ($(NOTEBOOKS),)
	MRICOURSE_HEADLESS=1 MRICOURSE_PROFILE=smoke MRICOURSE_RESULTS=_build/smoke/results $(BIN)/python -m pytest -p no:cacheprovider \
	  --nbval-lax --nbval-cell-timeout=600 $(NOTEBOOKS)
endif

weights: $(STAMP)
	$(BIN)/python -m mricourse.training.weights --runs _build/weights-runs

student: $(STAMP)
	$(BIN)/python -m mricourse.course.exercises student notebooks/ --out student
	$(BIN)/python -m mricourse.course.exercises instructor notebooks/ --out instructor

# the student versions run in the smoke profile; only the stubs' NotImplementedError may be raised
student-check: $(STAMP)
ifneq ($(NOTEBOOKS),)
	$(BIN)/python -m mricourse.course.exercises student $(NOTEBOOKS) --out _build/student --run --profile smoke
endif

# the Colab path: a separate environment like a Colab runtime's (cached by its inputs), the package
# installed from its metadata as each notebook's first cell does (no lock), every chapter run
colab-check: $(STAMP)
	$(BIN)/python tests/colab/check_colab.py

# the lower bounds of pyproject.toml, tested: the oldest versions it admits installed together
# (torch: the oldest CPU build at hand), then the unit tests (not part of make test)
oldest:
	test -x .venv-oldest/bin/python || $(PYTHON) -m venv .venv-oldest
	.venv-oldest/bin/python -m pip install -q -r requirements/oldest.txt pytest nbformat nbclient ipykernel pyyaml
	.venv-oldest/bin/python -m pip install -q --no-deps -r requirements/nodeps.txt
	.venv-oldest/bin/python -m pip install -q --no-deps --no-build-isolation -e .
	.venv-oldest/bin/python -m pytest -p no:cacheprovider -o addopts="" -q tests

book-check: $(STAMP)
	MRICOURSE_HEADLESS=1 MRICOURSE_PROFILE=smoke MRICOURSE_RESULTS=_build/smoke/results $(BIN)/jupyter-book build . -W --keep-going \
	  --path-output _build/smoke

# every page of the smoke build in headless Chromium: images, solution toggles, Colab links
check-book: book-check browser
	$(BIN)/python tests/browser/check_book.py _build/smoke/_build/html --screenshots _build/smoke/screenshots

# headless Chromium for check-book (Debian's package; installed when missing)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "installing Debian's chromium for the browser check"; $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

test: meta lint unit nbval colab-check student-check book-check check-book

book: $(STAMP)
	MRICOURSE_HEADLESS=1 $(BIN)/jupyter-book build .
	@# the results page is read before the chapters; rebuild it from the files they just wrote
	touch book/results.ipynb
	MRICOURSE_HEADLESS=1 $(BIN)/jupyter-book build .

# the chapters' budgets are for a reader's two idle cores: the bench runs with OpenMP's own way of
# waiting (PASSIVE made training 1.4-1.8x slower on idle cores); on shared cores run
# OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m mricourse.course.bench instead
bench: $(STAMP)
	env -u OMP_WAIT_POLICY $(BIN)/python -m mricourse.course.bench --profile cpu

speed: $(STAMP)
	$(BIN)/python -m mricourse.training.speed --out _build/speed.json

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -viE '^(fastmri|voxelmorph|neurite|pystrum)==' > requirements/lock.txt

clean:
	rm -rf _build $(VENV) $(TOOLS) .pytest_cache .ruff_cache student instructor *.egg-info
