# Two entry points: `make run` (notebook suite) and `make test` (pytest). Both create .venv.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SHARED := $(abspath ../shared/data/medmnist)

# Real MedMNIST files for development and CI live beside the checkout when present.
ifneq ($(wildcard $(SHARED)/bloodmnist.npz),)
export DPECNN_DATA_ROOT ?= $(SHARED)
endif

.PHONY: install run test bench clean

install: $(STAMP)

# escnn goes in with --no-deps: its py3nj requirement needs a Fortran compiler and is only
# used for SO(3) (see ../shared/DESIGN.md section 1); its other requirements are pinned.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps escnn==1.0.11
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

run: install
	$(PY) -m dpecnn suite

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) -m dpecnn.bench

clean:
	rm -rf $(VENV)
