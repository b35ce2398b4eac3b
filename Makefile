# Two commands on a fresh machine: `make run` (the product, embedded mode) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
PORT ?= 8000
FILECONVERT_DATA_DIR ?= $(CURDIR)/var
export PORT FILECONVERT_DATA_DIR

.PHONY: install run test lint schema bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt scripts/system-deps.sh
	bash scripts/system-deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) scripts/run_embedded.py

lint: install
	$(PY) -m ruff check .

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

schema: install
	$(PY) manage.py spectacular --validate --fail-on-warn --file openapi.yaml

bench: install
	@echo "Benchmarks need PostgreSQL: DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
	$(PY) bench/list_depth.py

clean:
	rm -rf $(VENV) var .pytest_cache
