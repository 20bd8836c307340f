# Two entry points: `make run` (notebook suite) and `make test` (lint, then pytest). Both create .venv.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
SHARED := $(abspath ../shared/data/medmnist)

# Real MedMNIST files for development and CI live beside the checkout when present.
ifneq ($(wildcard $(SHARED)/bloodmnist.npz),)
export DPECNN_DATA_ROOT ?= $(SHARED)
endif

.PHONY: install install-dev run test lint docs bench clean

install: $(STAMP)

install-dev: $(DEV)

# requirements-nodeps.txt (escnn) goes in with --no-deps: see the comment in that file.
$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

$(DEV): $(STAMP) requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

run: install
	$(PY) -m dpecnn suite

lint: install-dev
	$(VENV)/bin/ruff check dpecnn tests
	$(VENV)/bin/ruff format --check dpecnn tests

test: lint
	$(PY) -m pytest -q

docs: install-dev
	$(VENV)/bin/mkdocs build --strict

bench: install
	$(PY) -m dpecnn.bench

clean:
	rm -rf $(VENV)
