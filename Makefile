# Rempart — two commands for a newcomer on Debian/Ubuntu:
#   make demo    install into .venv (and nmap if missing), run the demo, print the report's path
#   make test    install the dev extras and run the test suite (not the slow and oracle tests)
#   make test-slow    the slow tests (fault injection: full disk, DNS black hole, load; Dask)
#   make test-oracle  compare Rempart with sslyze, Python's ssl, openssl, nmap and the MDN Observatory (tests/oracle)
#   make install user-wide `rempart` on the PATH, with pipx (~/.local/bin)
# After make demo or make dev, run .venv/bin/rempart (or `source .venv/bin/activate`).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
# What the demo needs (nmap for ports://, openssl, the PDF report's libraries and font, NSD and
# ldnsutils for the signed DNS lab), and
# what the tests add: the oracle web server, PDF text extraction, network namespaces, and
# a browser for the report screenshots.
DEMO_PACKAGES := nmap openssl libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core nsd ldnsutils
TEST_PACKAGES := $(DEMO_PACKAGES) nginx iproute2 util-linux poppler-utils chromium bind9-dnsutils

.PHONY: install dev sysdeps sysdeps-demo sysdeps-node test test-slow test-oracle oracle-venv observatory-oracle lint demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,pdf,dask]'
	rm -f $(VENV)/.installed-*; touch $(STAMP)

# A user-wide install from this checkout, in its own virtual environment (pipx), with the
# PDF renderer; `rempart` lands in ~/.local/bin (`pipx ensurepath` puts it on the PATH).
install:
	@command -v pipx >/dev/null || { echo "make install needs pipx: sudo apt-get install pipx (or use .venv/bin/rempart after make dev)"; exit 1; }
	pipx install --force .
	pipx inject rempart 'weasyprint>=62'

dev: $(STAMP)

# System packages, installed with apt when running as root (else the apt-get line is printed):
# sysdeps-demo for the demo, sysdeps for everything the tests use.
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "missing system packages:$$missing — install them with: sudo apt-get install$$missing"; fi
endef

sysdeps-demo:
	$(call apt_install,$(DEMO_PACKAGES))

sysdeps:
	$(call apt_install,$(TEST_PACKAGES))

test: sysdeps dev keystone-venv
	$(BIN)/python -m pytest -q

test-slow: sysdeps dev
	$(BIN)/python -m pytest -q -m slow

# The OpenStack tests run the real Keystone (SQLite, loopback) from its own environment:
# its pins (SQLAlchemy, oslo.*) must not meet ours. checks/openstack/lab.py starts it.
KEYSTONE_VENV := .venv-keystone
KEYSTONE_VERSION := 30.0.0

$(KEYSTONE_VENV)/.keystone-$(KEYSTONE_VERSION):
	$(PYTHON) -m venv $(KEYSTONE_VENV)
	$(KEYSTONE_VENV)/bin/python -m pip install -q --upgrade pip
	$(KEYSTONE_VENV)/bin/python -m pip install -q 'keystone==$(KEYSTONE_VERSION)'
	touch $@

keystone-venv: $(KEYSTONE_VENV)/.keystone-$(KEYSTONE_VERSION)

# The oracles of tests/oracle run apart: sslyze pins its own cryptography and nassl.
ORACLE_VENV := .venv-oracle
SSLYZE_VERSION := 6.3.1

$(ORACLE_VENV)/.sslyze-$(SSLYZE_VERSION):
	$(PYTHON) -m venv $(ORACLE_VENV)
	$(ORACLE_VENV)/bin/python -m pip install -q --upgrade pip
	$(ORACLE_VENV)/bin/python -m pip install -q 'sslyze==$(SSLYZE_VERSION)'
	touch $@

oracle-venv: $(ORACLE_VENV)/.sslyze-$(SSLYZE_VERSION)

# The MDN HTTP Observatory (npm), the oracle of the web family's score. Its install script
# downloads Chromium's HSTS preload list, which is not reachable from CI: scripts are
# skipped and an empty list written (no lab host is preloaded either way).
OBSERVATORY_VERSION := 1.4.8
OBSERVATORY_DIR := .oracle-observatory
OBSERVATORY_PKG := $(OBSERVATORY_DIR)/node_modules/@mdn/mdn-http-observatory

$(OBSERVATORY_DIR)/.observatory-$(OBSERVATORY_VERSION):
	@command -v npm >/dev/null || $(MAKE) --no-print-directory sysdeps-node
	mkdir -p $(OBSERVATORY_DIR)
	cd $(OBSERVATORY_DIR) && npm install --ignore-scripts --no-audit --no-fund --silent '@mdn/mdn-http-observatory@$(OBSERVATORY_VERSION)'
	echo '{}' > $(OBSERVATORY_PKG)/conf/hsts-preload.json
	touch $@

observatory-oracle: $(OBSERVATORY_DIR)/.observatory-$(OBSERVATORY_VERSION)

sysdeps-node:
	$(call apt_install,nodejs npm)

test-oracle: sysdeps dev oracle-venv observatory-oracle
	$(BIN)/python -m pytest -q -m oracle

lint: dev
	$(BIN)/ruff check audit checks reports tests bench
	$(BIN)/ruff format --check audit checks reports tests bench
	$(BIN)/mypy

demo: sysdeps-demo dev
	$(BIN)/rempart demo
	@echo "next: .venv/bin/rempart findings --db rempart-demo/rempart.db  (or source .venv/bin/activate; make install for a user-wide rempart)"

bench: sysdeps dev
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(ORACLE_VENV) $(KEYSTONE_VENV) $(OBSERVATORY_DIR) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache rempart-demo
