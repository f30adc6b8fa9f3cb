# Two commands do everything on a fresh Debian machine with Python 3.11:
#   make run    create the venv, install, seed the demo town if there is no database, serve on :8000
#   make test   install the test dependencies (Debian's chromium and postgresql included) and run unit +
#               end-to-end tests on SQLite, then the unit tests again on a throwaway PostgreSQL cluster
#   make run-pg the same demo on PostgreSQL: a local cluster in data/pg (docs/operations.md §PostgreSQL)
#   make bench  the benchmark against PouchDB and the machine (minutes; docs/benchmarks.md)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DB ?= data/gridbook.db
HOST ?= 127.0.0.1
PORT ?= 8000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run run-pg test unit unit-pg e2e chromium node postgres clean bench axe

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

# Node and npm for the benchmark's PouchDB peer (its smoke run is part of `make test`).
node:
	@{ command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; } || \
	  { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nodejs npm; }

# Debian's Chromium, and a CJK font so that the screenshots the tests take show Chinese.
chromium:
	@{ command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "wqy"; } || \
	  { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium fonts-wqy-microhei; }

# Debian's PostgreSQL server programs (initdb, pg_ctl, pg_dump, psql), for make test and make run-pg.
PGBIN = $(lastword $(sort $(wildcard /usr/lib/postgresql/*/bin)))
postgres:
	@[ -x "$(PGBIN)/initdb" ] || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q postgresql; }

# axe-core for e2e/test_axe.py, from npm into e2e/node_modules (pinned by e2e/package-lock.json; served
# to the browser from that file, no CDN).
axe: node
	@[ -f e2e/node_modules/axe-core/axe.min.js ] || (cd e2e && npm ci --no-audit --no-fund)

# Both backends: everything on SQLite, then tests/ again on PostgreSQL (tests/backend.py starts a
# throwaway cluster on a unix socket and stops it at the end; GRIDBOOK_TEST_PG=URL uses yours instead).
test: $(VENV)/.test-installed chromium node postgres axe
	$(PY) -m pytest
	GRIDBOOK_TEST_BACKEND=postgres $(PY) -m pytest tests

unit: $(VENV)/.test-installed
	$(PY) -m pytest tests

unit-pg: $(VENV)/.test-installed postgres
	GRIDBOOK_TEST_BACKEND=postgres $(PY) -m pytest tests

# The demo on PostgreSQL: a cluster of its own in data/pg (made on first use, listening only on a unix
# socket there), database "gridbook", then `run` as on SQLite (seeds the demo into a new database).
PGDIR = $(abspath data/pg)
PGURL = postgresql://postgres@/gridbook?host=$(PGDIR)
PGAS = $(shell [ "$$(id -u)" = 0 ] && echo runuser -u postgres --)
run-pg: $(VENV)/.installed postgres
	@mkdir -p $(PGDIR)
	@[ "$$(id -u)" != 0 ] || chown postgres $(PGDIR)
	@[ -f $(PGDIR)/data/PG_VERSION ] || $(PGAS) $(PGBIN)/initdb -D $(PGDIR)/data -A trust -U postgres -E UTF8 --no-locale >/dev/null
	@$(PGAS) $(PGBIN)/pg_ctl -D $(PGDIR)/data status >/dev/null 2>&1 || \
	  $(PGAS) $(PGBIN)/pg_ctl -D $(PGDIR)/data -o "-k $(PGDIR) -c listen_addresses=''" -l $(PGDIR)/log -w start
	@$(PGBIN)/psql -h $(PGDIR) -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'gridbook'" | grep -q 1 || \
	  $(PGBIN)/createdb -h $(PGDIR) -U postgres gridbook
	$(PY) -m server run --db '$(PGURL)' --host $(HOST) --port $(PORT)

e2e: $(VENV)/.test-installed chromium axe
	$(PY) -m pytest e2e

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis test-artifacts

# The long fault-injection run (issue 7): 10,000 seeded runs of phones syncing through a proxy that
# loses, cuts, delays and duplicates requests and kills the server; figures in docs/reliability.md.
# Its short version runs in `make test` (tests/test_faults.py).
.PHONY: faults
faults: $(VENV)/.test-installed
	$(PY) -m bench.faults --runs 10000 --seed 20261123 --json bench/results/faults.json

# The benchmark (docs/benchmarks.md): installs the PouchDB peer into bench/peer/node_modules (npm, pinned
# by bench/peer/package-lock.json), runs every scenario and writes the table into docs/benchmarks.md.
# The county-scale database is cached in bench/results/ (git-ignored); BENCH_ARGS=--quick for a smoke run.
# Then the console at county scale (issue 14, bench/console.py): 海曙区 is built into bench/results/ when
# missing (hours the first time on a small machine; CONSOLE_ARGS="--scale 0.1" for a tenth of it).
bench: $(VENV)/.test-installed chromium node
	@[ -d bench/peer/node_modules/express-pouchdb ] || (cd bench/peer && npm ci --no-audit --no-fund)
	$(PY) -m bench.run $(BENCH_ARGS)
	$(PY) -m bench.console $(CONSOLE_ARGS)
