# portrait: the two commands are `make demo` and `make test`.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PEOPLE ?= 20000
export PORTRAIT_DATA_DIR ?= $(CURDIR)/data
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: install demo test bench clean services

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Installs from the lock (no resolver backtracking, no CUDA); re-runs only when inputs change.
$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install -q -c requirements.lock -e ".[dev,bench]"
	@touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/portrait demo --people $(PEOPLE)

# Redis backs the scale-out online-store tests; installed from Debian when we can (root + apt), else they skip.
services:
	@command -v redis-server >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) ; } || \
	  echo "redis-server not installed: Redis online-store tests will be skipped"

test: install services
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf data mlruns/mlflow.db mlruns/artifacts
