# Two commands do all the set-up on a fresh machine (Python 3.11 + pip, no GPU, no internet but the registries):
#   make repro   -> .venv with pinned dependencies (if missing), then `dvc repro` (profile from params.yaml)
#   make test    -> same environment, the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv repro test test-fast clean-venv status

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

repro: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

test-fast: venv
	$(BIN)/python -m pytest -m "not slow"

status: venv
	$(BIN)/python -m replicate.assets.registry status

clean-venv:
	rm -rf $(VENV)
