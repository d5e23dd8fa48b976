# noeari: `make run` serves the app with demo data, `make test` runs every test.
# Both install what is missing first (Debian packages, then .venv).
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app app

# With neither MYSQL_HOST nor MYSQL_UNIX_SOCKET set, use (and start) the project's own MariaDB in var/.
ifeq ($(strip $(MYSQL_HOST)$(MYSQL_UNIX_SOCKET)),)
LOCAL_DB := 1
export MYSQL_UNIX_SOCKET := $(CURDIR)/var/mysql.sock
export MYSQL_USER ?= $(shell id -un)
endif
export MYSQL_DB ?= noeari
CLUSTER := $(CURDIR)/var/cluster
# `make test` runs the tests in this many processes (pytest-xdist), a file at a time each; 0 runs them in one.
PYTEST_WORKERS ?= 2

.PHONY: run dev test test-cluster cluster-run cluster-stop bench bench-cluster bench-resilience stop deps deps-run deps-browser deps-test deps-bench deps-cluster venv db-server db backup restore

# Starts (or, when it runs already, reloads) MariaDB, gunicorn, the worker and nginx, all under var/.
run: deps-run db
	@scripts/services.sh start
	@echo "noeari is running at http://$${BIND:-127.0.0.1:5000} (logs in var/log); \`make stop\` stops it."

dev: db
	$(FLASK) run --debug --port 5000

# nginx too: tests drive `make run`'s own stack (scripts/services.sh).
test: deps-test venv db-server
	$(PYTHON) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The app on scripts/cluster.sh's 3-node Galera cluster (started if need be; `make stop` stops it):
# overselling across nodes, once-only jobs, causal reads, a killed node, photos. CI runs it after `make test`.
test-cluster: deps-browser deps-cluster venv
	@scripts/cluster.sh start
	NOEARI_CLUSTER=1 MYSQL_SYNC_WAIT=1 MYSQL_UNIX_SOCKET=$(CLUSTER)/node1/mysql.sock $(PYTHON) -m pytest -p no:xdist tests/test_cluster.py $(PYTEST_ARGS)

# The app served from 3 gunicorns, each on its own node of the cluster, behind nginx on CLUSTER_BIND
# (default 127.0.0.1:5100), with a worker on each node. Demo data as `make run`; `make stop` stops it all.
cluster-run: deps-cluster venv
	@scripts/cluster.sh start
	@MYSQL_UNIX_SOCKET=$(CLUSTER)/node1/mysql.sock $(FLASK) init-db --seed
	@MYSQL_UNIX_SOCKET=$(CLUSTER)/node1/mysql.sock $(FLASK) migrate
	@RUN_DIR=$(CURDIR)/var/cluster-run BIND=$${CLUSTER_BIND:-127.0.0.1:5100} DB_SOCKETS="$$(scripts/cluster.sh sockets)" \
		MYSQL_SYNC_WAIT=$${MYSQL_SYNC_WAIT:-1} MYSQL_TRANSACTION_ATTEMPTS=$${MYSQL_TRANSACTION_ATTEMPTS:-5} \
		WEB_CONCURRENCY=$${WEB_CONCURRENCY:-2} scripts/services.sh start
	@echo "noeari is running on the cluster at http://$${CLUSTER_BIND:-127.0.0.1:5100}; \`make stop\` stops it."

cluster-stop:
	@RUN_DIR=$(CURDIR)/var/cluster-run scripts/services.sh stop
	@scripts/cluster.sh stop

# Builds noeari_bench (never the dev database) at each scale and writes bench/RESULTS.md.
bench: deps-bench venv db-server
	$(PYTHON) bench/run.py

# The p50 of /products and checkout on the cluster against one server, side by side; writes bench/CLUSTER.md.
bench-cluster: deps-cluster venv db-server
	$(PYTHON) bench/cluster.py

# Slow clients, a paused database, heavy uploads and forgot-password timing against `make run`'s own stack,
# on its own port and database (noeari_resilience); writes bench/RESILIENCE.md. About 2 minutes.
bench-resilience: deps-run venv db-server
	$(PYTHON) bench/resilience.py

# A consistent dump, the photos and the instance key in var/backups/noeari-<UTC timestamp>.tar.gz.
backup: venv db-server
	@$(FLASK) backup

# Into an empty database only: `make restore FILE=var/backups/noeari-....tar.gz`.
restore: venv db-server
	@test -n "$(FILE)" || { echo "usage: make restore FILE=var/backups/noeari-<timestamp>.tar.gz" >&2; exit 2; }
ifdef LOCAL_DB
	@scripts/db.sh create "$(MYSQL_DB)"
endif
	@$(FLASK) restore "$(FILE)"

stop: cluster-stop
	@scripts/services.sh stop
	@scripts/db.sh stop

deps:
	@scripts/install-deps.sh

deps-run:
	@scripts/install-deps.sh --run

deps-browser:
	@scripts/install-deps.sh --browser

deps-test:
	@scripts/install-deps.sh --run --browser

deps-bench:
	@scripts/install-deps.sh --bench

deps-cluster:
	@scripts/install-deps.sh --cluster

venv: deps $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

db-server: deps
ifdef LOCAL_DB
	@scripts/db.sh start
endif

# The schema and demo data load only into a new database; later runs apply pending migrations.
db: venv db-server
ifdef LOCAL_DB
	@scripts/db.sh create "$(MYSQL_DB)"
endif
	@$(FLASK) check-db
	@$(FLASK) init-db --seed
	@$(FLASK) migrate
