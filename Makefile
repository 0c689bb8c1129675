# Two commands for a fresh machine: `make demo` (pipeline on the sample data) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
STAMP := $(VENV)/.installed-stamp
MLFLOW_PORT ?= 5000

AIRFLOW_PORT ?= 8080
# Airflow on this machine: state under .brighthouse/airflow, our dags/, deliveries in inbox/.
AIRFLOW_ENV := AIRFLOW_HOME=$(CURDIR)/.brighthouse/airflow AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False \
	AIRFLOW__CORE__PARALLELISM=$(shell nproc) AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True \
	AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=$(AIRFLOW_PORT) \
	AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$(AIRFLOW_PORT)/execution/ \
	BRIGHTHOUSE_PROJECT_DIR=$(CURDIR)

.PHONY: install demo test test-fast mlflow-ui serve airflow stack stack-down lock

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

install: $(STAMP)

demo: install
	dvc pull data.dvc
	dvc repro
	@echo
	@brighthouse models
	@echo
	@echo "MLflow UI:        make mlflow-ui   (then open http://127.0.0.1:$(MLFLOW_PORT))"
	@echo "Enhance a photo:  .venv/bin/brighthouse enhance PHOTO.jpg --out enhanced/"
	@echo "Serve over HTTP:  .venv/bin/brighthouse serve   (POST an image to http://127.0.0.1:8000/v1/enhance)"

test: install
	ruff check --no-cache components serving dags brighthouse stack
	ruff check --no-cache --select F,E9 tests bench  # pyflakes: unused imports, undefined names
	mypy
	pytest

test-fast: install
	pytest -m "not slow"

mlflow-ui: install
	mkdir -p .brighthouse
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false mlflow server --workers 1 \
		--backend-store-uri sqlite:///$(CURDIR)/.brighthouse/mlflow.db \
		--default-artifact-root $(CURDIR)/.brighthouse/mlartifacts \
		--host 127.0.0.1 --port $(MLFLOW_PORT)

serve: install
	brighthouse serve

airflow: install
	mkdir -p inbox .brighthouse/airflow
	$(AIRFLOW_ENV) airflow db migrate
	$(AIRFLOW_ENV) airflow pools set gpu 1 "one training at a time"
	$(AIRFLOW_ENV) airflow standalone

# The team topology on this machine (PostgreSQL, Redis, S3, MLflow server, Airflow on Celery):
# state under .brighthouse/stack/, URLs printed; `. .brighthouse/stack/env` points a shell at it.
stack: install
	python -m stack up

stack-down: install
	python -m stack down

# Re-freeze the lock after changing dependencies in pyproject.toml.
lock: install
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^brighthouse' > requirements.lock
