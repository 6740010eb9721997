# amlscore: each target is documented by its "## " comment; `make` alone lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= data/default

.PHONY: help setup browser servers java demo test lint generate validate features rate train evaluate serve bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "amlscore needs Python 3.11, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt --config-settings editable_mode=compat -e '.[dev,spark]'
	@touch $(STAMP)

setup: $(STAMP) ## Create .venv and install the pinned dependencies (constraints.txt)

browser: ## Install headless Chromium, chromedriver and CJK fonts from Debian for the browser tests (when root)
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium, chromium-driver and fonts-noto-cjk from Debian's packages"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null) \
	    || echo "could not install chromium: browser tests will be skipped"; \
	else echo "chromium or chromedriver not found and not root: browser tests will be skipped (apt-get install chromium chromium-driver fonts-noto-cjk)"; fi

servers: ## Install redis-server and PostgreSQL from Debian for the shared-backend tests (when root; never started here)
	@if command -v redis-server >/dev/null 2>&1 && { command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing redis-server and postgresql from Debian's packages (the tests start their own on loopback)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server postgresql >/dev/null \
	    && for s in redis-server postgresql; do (systemctl disable --now $$s || service $$s stop) >/dev/null 2>&1 || true; done) \
	    || echo "could not install redis-server/postgresql: the shared-backend tests will be skipped"; \
	else echo "redis-server/postgresql not found and not root: the shared-backend tests will be skipped (apt-get install redis-server postgresql)"; fi

java: ## Install Java 17 from Debian for the Spark engine's tests (when root)
	@if command -v java >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing openjdk-17-jre-headless from Debian's packages"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null) \
	    || echo "could not install Java: Spark engine tests will be skipped"; \
	else echo "java not found and not root: Spark engine tests will be skipped (apt-get install openjdk-17-jre-headless)"; fi

demo: setup ## The main job on the embedded default data set
	$(BIN)/amlscore demo --out $(DATA)

test: setup browser servers java ## Run the whole test suite (what CI runs)
	$(BIN)/python -m pytest -q

generate: setup ## Generate the default synthetic bank into $(DATA)
	$(BIN)/amlscore generate --out $(DATA)

validate: setup ## Validate the data set in $(DATA) against the contract
	$(BIN)/amlscore validate $(DATA)

features: setup ## Offline features of $(DATA) into $(DATA)/features.parquet
	$(BIN)/amlscore features --data $(DATA) --out $(DATA)/features.parquet

rate: setup ## Rate every customer of $(DATA) (PBoC weighted method) into runs/rating
	$(BIN)/amlscore rate $(DATA) --out runs/rating

lint: setup ## Byte-compile everything (a cheap syntax check)
	$(BIN)/python -m compileall -q amlscore notebooks tests benchmarks
	$(BIN)/lint-imports

clean: ## Remove generated data, runs and the virtual environment
	rm -rf $(VENV) data runs mlruns mlflow.db state .pytest_cache
