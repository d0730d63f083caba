# Two commands for a new user:  make demo   and   make test
# Each creates (or reuses) the virtualenv in .venv and installs the project into it.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kam-installed
# `make test` also installs the Spark engine (dbt-spark, pyspark: ~490 MB) for its Spark test
SPARK_STAMP := $(VENV)/.kam-spark-installed

.PHONY: setup demo test lint bench docs dev clean

setup: $(STAMP) dbt/target/manifest.json

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Dagster loads the dbt manifest at import time: build it once here (never at import).
dbt/target/manifest.json: $(STAMP) $(shell find dbt/models dbt/seeds dbt/macros -type f 2>/dev/null) dbt/dbt_project.yml dbt/profiles.yml
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dagster-dbt project prepare-and-package --file kam_assets/dbt_project.py

demo: setup
	$(BIN)/kam demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/sqlfluff lint dbt/models --disable-progress-bar

$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	@touch $(SPARK_STAMP)

test: setup lint $(SPARK_STAMP)
	$(BIN)/pytest

bench: setup
	$(BIN)/kam bench

# var as_of_date has no default: the docs' compiled SQL uses AS_OF (default: yesterday, UTC).
AS_OF ?= $(shell date -u -d yesterday +%F 2>/dev/null || date -u -v-1d +%F)

docs: setup
	cd dbt && ../$(BIN)/dbt docs generate --profiles-dir . --vars "$$(../$(BIN)/python -m pipelines.run_params $(AS_OF))"

dev: setup
	$(BIN)/kam dev

clean:
	rm -rf dbt/target dbt/logs .pytest_cache .ruff_cache
