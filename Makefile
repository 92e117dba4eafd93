# Rewind — the two set-up commands are `make demo` and `make test`.
# Both install what they need: a virtualenv in .venv, and the Debian packages
# haproxy, prometheus, prometheus-alertmanager, postgresql, sqlite3, tmux and victoria-metrics (with apt-get when
# missing and run as root).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEBIAN_PACKAGES := haproxy prometheus prometheus-alertmanager postgresql sqlite3 tmux victoria-metrics
# kubectl for the Gateway API router's fake-server tests: Debian's kubernetes-client, unless a kubectl is
# already installed (another package's /usr/bin/kubectl would make dpkg refuse to overwrite it).
DEBIAN_PACKAGES += $(if $(shell command -v kubectl),,kubernetes-client)

.PHONY: help install system-packages demo test test-unit test-integration bench bench-judge lint clean

help:
	@echo "make demo    start the sandbox (MLflow, model servers, HAProxy, Prometheus, Alertmanager, traffic) and watch it"
	@echo "make test    run every test, integration tests included"
	@echo "make lint    check the code with ruff and mypy (make test runs it first)"
	@echo "make bench   measure the performance figures (JSON to \$$BENCH_OUT when set)"
	@echo "make bench-judge  the judge on the real sandbox: false breaches, seconds to detect (~12 min)"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,feast]'
	@touch $(STAMP)

install: $(STAMP)

# Installs the server packages when missing and we are root; otherwise says how.
system-packages:
	@missing=""; \
	for pkg in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	      || { echo "apt-get could not install:$$missing" >&2; exit 1; }; \
	  else \
	    echo "Missing Debian packages:$$missing. Install them with: sudo apt-get install$$missing" >&2; \
	    if [ "$(REQUIRE_SYSTEM_PACKAGES)" = 1 ] || [ "$$CI" = true ]; then exit 1; fi; \
	  fi; \
	fi

demo: REQUIRE_SYSTEM_PACKAGES = 1
demo: system-packages $(STAMP)
	$(BIN)/rewind demo

# The unit and console tests use fakes only: they run on two workers. Then the integration tests, on two
# workers too: two groups, each in order on a sandbox of its own (tests/integration/conftest.py, GROUPS).
INTEGRATION = $(BIN)/python -m pytest -n 2 --dist loadgroup tests/integration
test: system-packages $(STAMP) lint
	$(BIN)/python -m pytest -n 2 tests/unit tests/tui
	$(INTEGRATION)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

test-integration: system-packages $(STAMP)
	$(INTEGRATION)

lint: $(STAMP)
	$(BIN)/ruff check console tests
	$(BIN)/mypy

bench: system-packages $(STAMP)
	$(BIN)/python -m tests.bench

# About 12 minutes on the real sandbox: false breaches when healthy, seconds to detect each scenario.
bench-judge: system-packages $(STAMP)
	$(BIN)/python -m tests.bench judge_soak

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
