# make demo: venv + install + label examples/ with the bundled model (embedded, SQLite)
# make test: test extras + Redis/PostgreSQL up (reused or started) + pytest
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
FACELABEL := $(VENV)/bin/facelabel
DEMO_DB := sqlite:///$(CURDIR)/demo.db
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test services bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[postgres,test]'
	touch $@

demo: $(VENV)/.installed
	rm -f demo.db demo.db-wal demo.db-shm
	$(FACELABEL) --db $(DEMO_DB) label examples --aligned
	$(FACELABEL) --db $(DEMO_DB) query

services: $(VENV)/.installed
	$(PY) -m tests.services

test: services
	$(PY) -m pytest

bench: services
	$(PY) bench/throughput.py
	$(PY) bench/database.py

clean:
	rm -rf $(VENV) demo.db demo.db-wal demo.db-shm .pytest_cache
