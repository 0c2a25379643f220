# The README's two commands: `make up` (the local stack) and `make test` (the whole suite).
# `make setup` is the install step both share: idempotent and quick when everything is there.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := redis-server redis-sentinel redis-tools nutcracker haproxy python3-venv
BINARIES := redis-server redis-sentinel redis-cli redis-benchmark nutcracker haproxy
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup apt up down test lint typecheck unit integration bench clean

setup: apt $(VENV)/.installed

# Debian packages, installed only when a binary (or Python's venv module) is missing; the
# distribution's own redis/sentinel services are not started (they would take our ports).
apt:
	@missing=""; for b in $(BINARIES); do PATH="$$PATH:/usr/sbin:/sbin" command -v $$b >/dev/null || missing="$$missing $$b"; done; \
	python3 -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages (missing:$$missing)"; \
	  printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; $(SUDO) chmod +x /usr/sbin/policy-rc.d; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); rc=$$?; \
	  $(SUDO) rm -f /usr/sbin/policy-rc.d; \
	  if [ $$rc -ne 0 ]; then exit $$rc; fi; \
	  for s in redis-server redis-sentinel nutcracker haproxy; do $(SUDO) systemctl disable --now $$s >/dev/null 2>&1 || true; done; \
	fi

$(VENV)/.installed: pyproject.toml | apt
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

up: setup
	$(VENV)/bin/redkeeper up

down: setup
	$(VENV)/bin/redkeeper down

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: setup
	$(VENV)/bin/mypy

unit: setup
	$(VENV)/bin/pytest -q tests/unit tests/golden

test: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy
	PATH="$$PATH:/usr/sbin:/sbin" $(VENV)/bin/pytest -q

bench: setup
	PATH="$$PATH:/usr/sbin:/sbin" $(PY) -m benchmarks

clean:
	rm -rf $(VENV) .redkeeper .pytest_cache .mypy_cache .ruff_cache
