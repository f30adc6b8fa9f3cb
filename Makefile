# Two commands do everything on a fresh Debian machine with Python 3.11:
#   make run    create the venv, install, seed the demo town if there is no database, serve on :8000
#   make test   install the test dependencies (Debian's chromium included) and run unit + end-to-end tests
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DB ?= data/gridbook.db
HOST ?= 127.0.0.1
PORT ?= 8000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test unit e2e chromium clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q python3-venv && $(PYTHON) -m venv $(VENV); }
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e .
	@touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(VENV)/bin/pip install -q -e '.[test]'
	@touch $@

run: $(VENV)/.installed
	$(PY) -m server run --db $(DB) --host $(HOST) --port $(PORT)

# Debian's Chromium, and a CJK font so that the screenshots the tests take show Chinese.
chromium:
	@{ command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "wqy"; } || \
	  { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium fonts-wqy-microhei; }

test: $(VENV)/.test-installed chromium
	$(PY) -m pytest

unit: $(VENV)/.test-installed
	$(PY) -m pytest tests

e2e: $(VENV)/.test-installed chromium
	$(PY) -m pytest e2e

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis test-artifacts

# The long fault-injection run (issue 7): 10,000 seeded runs of phones syncing through a proxy that
# loses, cuts, delays and duplicates requests and kills the server; figures in docs/reliability.md.
# Its short version runs in `make test` (tests/test_faults.py).
.PHONY: faults
faults: $(VENV)/.test-installed
	$(PY) -m bench.faults --runs 10000 --seed 20261123 --json bench/results/faults.json
