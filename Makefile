# camel-k-kit-gc — every target installs what it needs on a fresh Debian machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
SYSTEM_PACKAGES := docker-registry prometheus-pushgateway prometheus apache2-utils
PYTEST_ARGS ?=

.PHONY: install system-deps test lint demo bench soak image manifests deploy undeploy clean help

help:
	@echo "make demo     run the collector against a local registry and an emulated cluster"
	@echo "make test     install everything and run the whole test suite"
	@echo "make lint     ruff + mypy"
	@echo "make bench    performance benchmark (several minutes)"
	@echo "make soak     long race soak against a simulated operator"
	@echo "make image    build the container image (docker, podman or buildah)"
	@echo "make manifests / deploy / undeploy   render or apply the kustomize overlays"

# System packages: the real registry, Pushgateway, promtool and htpasswd the tests start.
system-deps:
	@missing=""; \
	command -v docker-registry >/dev/null || missing="$$missing docker-registry"; \
	command -v prometheus-pushgateway >/dev/null || missing="$$missing prometheus-pushgateway"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v htpasswd >/dev/null || missing="$$missing apache2-utils"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	  if ! command -v apt-get >/dev/null; then echo "error: apt-get not found; install$$missing yourself" >&2; exit 1; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing \
	    || { echo "error: could not install$$missing with apt-get" >&2; exit 1; }; \
	fi

$(STAMP): pyproject.toml
	@command -v python3 >/dev/null || { echo "error: python3 is required" >&2; exit 1; }
	@python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: Python >= 3.11 is required" >&2; exit 1; }
	@python3 -m venv $(VENV) || { echo "error: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	@touch $(STAMP)

install: system-deps $(STAMP)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check gc tests
	$(VENV)/bin/mypy

demo: install
	$(PY) -m demo

bench: install
	$(PY) -m bench

soak: install
	KITGC_SLOW=1 $(PY) -m pytest tests/test_soak.py -v

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
