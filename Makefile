# Rempart — two commands for a newcomer on Debian/Ubuntu:
#   make demo    install into .venv (and nmap if missing), run the demo, print the report's path
#   make test    install the dev extras and run the whole test suite
#   make test-oracle  compare Rempart with sslyze, Python's ssl, openssl and nmap (tests/oracle)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
APT_PACKAGES := nmap nginx openssl iproute2 util-linux poppler-utils libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core chromium

.PHONY: install dev sysdeps test test-slow test-oracle oracle-venv lint demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,pdf,dask]'
	rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(BIN)/python
	$(BIN)/python -m pip install -q -e .

dev: $(STAMP)

# System packages the checks and tests use; installed with apt when running as root.
sysdeps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "missing system packages:$$missing — install them with: sudo apt-get install$$missing"; fi

test: sysdeps dev
	$(BIN)/python -m pytest -q

test-slow: sysdeps dev
	$(BIN)/python -m pytest -q -m slow

# The oracles of tests/oracle run apart: sslyze pins its own cryptography and nassl.
ORACLE_VENV := .venv-oracle
SSLYZE_VERSION := 6.3.1

$(ORACLE_VENV)/.sslyze-$(SSLYZE_VERSION):
	$(PYTHON) -m venv $(ORACLE_VENV)
	$(ORACLE_VENV)/bin/python -m pip install -q --upgrade pip
	$(ORACLE_VENV)/bin/python -m pip install -q 'sslyze==$(SSLYZE_VERSION)'
	touch $@

oracle-venv: $(ORACLE_VENV)/.sslyze-$(SSLYZE_VERSION)

test-oracle: sysdeps dev oracle-venv
	$(BIN)/python -m pytest -q -m oracle

lint: dev
	$(BIN)/ruff check audit checks reports tests bench
	$(BIN)/ruff format --check audit checks reports tests bench
	$(BIN)/mypy

demo: sysdeps dev
	$(BIN)/rempart demo

bench: sysdeps dev
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(ORACLE_VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache rempart-demo
