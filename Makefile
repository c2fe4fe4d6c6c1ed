# Set-up and checks on a fresh machine (Python 3.11 + pip, no GPU, no internet but the package registries):
#   make test         -> .venv with pinned dependencies (if missing), then the test suite
#   make repro        -> `dvc repro`: the default `mini` profile, offline, CPU only (a no-op when nothing changed)
#   make check        -> fails when a committed result is older than its code or parameters (every committed profile)
#   make check-repro  -> recomputes a seeded sample of committed results and compares (PROFILE=paper for the paper's)
#   make dryrun       -> every paper-profile stage at a tiny size on generated stand-in files (the GPU path, on a CPU)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= mini
ITEMS  ?= 1
RUN    := PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python

.PHONY: venv repro test test-fast check check-repro dryrun dvc-yaml status clean-venv

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
	$(RUN) -m pytest

test-fast: venv
	$(RUN) -m pytest -m "not slow"

check: venv
	$(RUN) -m replicate check

check-repro: venv
	$(RUN) -m replicate check-repro --profile $(PROFILE) --items $(ITEMS)

dryrun: venv
	$(RUN) -m replicate dryrun

dvc-yaml: venv
	$(RUN) -m replicate dvc-yaml

status: venv
	$(BIN)/python -m replicate.assets.registry status

clean-venv:
	rm -rf $(VENV)
