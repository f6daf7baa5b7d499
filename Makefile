# Two commands on a fresh machine:
#   make lab    set up (if needed) and open the course in JupyterLab
#   make test   set up (if needed) and run every test
# Options: make lab PORT=8899 NO_BROWSER=1     make test PYTEST_ARGS="-k lifecycle"
# `make lab` opens your own copy of the course (COURSE, git-ignored, made on first run); `make update` brings the
# course's updates into it and keeps your work.

VENV        ?= .venv
PORT        ?= 8888
NO_BROWSER  ?=
PYTEST_ARGS ?=
COURSE      ?= my-course
# The first Python >= 3.11 on the PATH (pandas 3, scikit-learn 1.9 and numpy 2.4 need it).
PYTHON      ?= $(shell for candidate in python3.13 python3.12 python3.11 python3; do \
                 command -v $$candidate >/dev/null 2>&1 && $$candidate -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
                 && { echo $$candidate; break; }; done)

BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed
LAB_FLAGS   := --ServerApp.ip=127.0.0.1 --port=$(PORT) \
               $(if $(NO_BROWSER),--no-browser) \
               $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: lab course update test install export clean-nbs check-sync bench html help

help:
	@echo "make lab     set up if needed, then open the course (PORT=8888, NO_BROWSER=1 for a headless machine)"
	@echo "make test    set up if needed, then run every test (PYTEST_ARGS='...' to pass options to pytest)"
	@echo "make update  pull the course's updates and bring them into your copy ($(COURSE)/), keeping your work"
	@echo "make export  regenerate mlops_kit/ from nbs/ (nbdev-export, with the phase packages) and clean the notebooks (nbdev-clean)"
	@echo "make bench   run the benchmarks in bench/"
	@echo "make html    run the notebooks and write the course as a static site to build/html (SOLUTIONS=1 adds the worked answers, in build/html-instructor)"

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "mlops-kit needs Python >= 3.11: install it, or run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

lab: course
	$(BIN)/jupyter lab $(LAB_FLAGS) --ServerApp.root_dir="$(abspath $(COURSE))" --LabApp.default_url=/lab/tree/nbs/index.ipynb

course: $(STAMP)
	$(BIN)/python scripts/course_copy.py make "$(COURSE)"

# A new pyproject.toml pulled here is installed by the next `make lab` (the stamp is older than it).
update: $(STAMP)
	@if git rev-parse --abbrev-ref --symbolic-full-name '@{upstream}' >/dev/null 2>&1; then git pull --ff-only; \
	 else echo "no upstream branch to pull from: bringing this checkout's course into your copy"; fi
	$(BIN)/python scripts/course_copy.py make "$(COURSE)"
	$(BIN)/python scripts/course_copy.py update "$(COURSE)"

test: $(STAMP)
	$(BIN)/python -m pytest -n auto --durations=25 $(PYTEST_ARGS)

export: $(STAMP)
	$(BIN)/nbdev-export
	$(BIN)/python scripts/phase_packages.py
	$(BIN)/nbdev-export
	$(BIN)/nbdev-clean

check-sync: export
	@git diff --exit-code --stat -- nbs mlops_kit || { echo "nbs/ and mlops_kit/ were out of sync or unclean: run 'make export' and commit"; exit 1; }
	@test -z "$$(git status --porcelain --untracked-files=all -- nbs mlops_kit)" || { git status --short -- nbs mlops_kit; echo "nbdev-export created untracked files: commit them"; exit 1; }

# The web version: Sphinx runs every page's notebook (an error fails the build) and writes a site that opens from the file
# system. A notebook whose code and library have not changed comes from the execution cache in build/jupyter_cache.
# The widgets are drawn by the ipywidgets HTML manager, installed by npm from docs/widgets' lock file (again only when
# the lock changes) and copied into the site by docs/conf.py.
WIDGETS       := docs/widgets
WIDGETS_STAMP := $(WIDGETS)/node_modules/.installed

$(WIDGETS_STAMP): $(WIDGETS)/package.json $(WIDGETS)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "make html needs Node.js and npm for the widgets on its pages: install Node.js (Debian: apt install nodejs npm)"; exit 1; }
	cd $(WIDGETS) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(WIDGETS_STAMP)

html: $(STAMP) $(WIDGETS_STAMP)
	MLOPS_KIT_SITE_SOLUTIONS=$(SOLUTIONS) $(BIN)/sphinx-build -b html -c docs -W --keep-going -q . \
	  $(if $(filter-out 0,$(SOLUTIONS)),build/html-instructor,build/html)
	@echo "The course's web version: open $(if $(filter-out 0,$(SOLUTIONS)),build/html-instructor,build/html)/index.html"

bench: $(STAMP)
	$(BIN)/python bench/import_time.py
	$(BIN)/python bench/experiments.py
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/drift.py
	$(BIN)/python bench/grading.py
	$(BIN)/python bench/journal.py
	$(BIN)/python bench/protocol.py
	$(BIN)/python bench/prune.py
