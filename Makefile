# Two commands for a fresh machine: `make demo` (pipeline on the sample data) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
STAMP := $(VENV)/.installed-stamp
MLFLOW_PORT ?= 5000

.PHONY: install demo test test-fast mlflow-ui serve lock

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

# Re-freeze the lock after changing dependencies in pyproject.toml.
lock: install
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^brighthouse' > requirements.lock
