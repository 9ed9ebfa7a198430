# portrait: the two commands are `make demo` and `make test`.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PEOPLE ?= 5000
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

# Redis backs the scale-out online-store tests, wrk the serving benchmarks; both from Debian when we can
# (root + apt), else the Redis tests skip and the serving benchmark says wrk is missing.
services:
	@missing=""; for p in redis-server wrk; do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null ; } || \
	  echo "not installed:$$missing (Redis tests skip; serving benchmarks need wrk)"; fi

# pytest exit code 5 means no test was collected: that is a broken suite, not a pass.
test: install services
	@$(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc = 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

bench: install services
	$(BIN)/python -m benchmarks

clean:
	rm -rf data mlruns/mlflow.db mlruns/artifacts
