# The README's two commands: `make up` (the local stack) and `make test` (the whole suite).
# `make setup` is the install step both share: idempotent and quick when everything is there.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# gcc + python3-dev build the proxy's optional C fast path (without them it runs pure Python).
# keepalived, iproute2, iptables, procps (sysctl) and curl (keepalived's track script) run the
# multi-host lab (`redkeeper lab`, tests/integration/test_lab.py).
APT_PACKAGES := redis-server redis-sentinel redis-tools nutcracker haproxy python3-venv \
  gcc libc6-dev python3-dev keepalived iproute2 iptables procps curl
BINARIES := redis-server redis-sentinel redis-cli redis-benchmark nutcracker haproxy gcc \
  keepalived ip iptables iptables-restore sysctl curl
CLIENTS_LOCK := tests/clients/package.json tests/clients/package-lock.json
CLIENTS_CACHE := .cache/clients
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup apt clients up down test lint typecheck unit integration bench drills-lab clean

setup: apt $(VENV)/.installed clients

# Debian packages, installed only when a binary (or Python's venv module) is missing; the
# distribution's own services (redis, sentinel, nutcracker, haproxy, keepalived) are never started:
# they would take our ports, and a stray keepalived would answer VRRP (policy-rc.d, then disabled).
apt:
	@missing=""; for b in $(BINARIES); do PATH="$$PATH:/usr/sbin:/sbin" command -v $$b >/dev/null || missing="$$missing $$b"; done; \
	python3 -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages (missing:$$missing)"; \
	  printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; $(SUDO) chmod +x /usr/sbin/policy-rc.d; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); rc=$$?; \
	  $(SUDO) rm -f /usr/sbin/policy-rc.d; \
	  if [ $$rc -ne 0 ]; then exit $$rc; fi; \
	  for s in redis-server redis-sentinel nutcracker haproxy keepalived; do $(SUDO) systemctl disable --now $$s >/dev/null 2>&1 || true; done; \
	fi

$(VENV)/.installed: pyproject.toml src/redkeeper/server/_speedups.c | apt
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

# The Node clients of tests/clients (node-redis, ioredis) from the committed lock file, into
# $(CLIENTS_CACHE)/node_modules; runs again only when the lock file changes. Never fails setup:
# without npm or the registry it writes the reason to $(CLIENTS_CACHE)/unavailable, and the
# node client tests skip with exactly that reason (tests/clients/matrix.py).
clients: $(CLIENTS_CACHE)/.installed ; @:

$(CLIENTS_CACHE)/.installed: $(CLIENTS_LOCK)
	@mkdir -p $(CLIENTS_CACHE); rm -f $@ $(CLIENTS_CACHE)/unavailable; cp $(CLIENTS_LOCK) $(CLIENTS_CACHE)/
	@if ! command -v npm >/dev/null; then \
	  echo "npm not found on PATH: the node client tests are skipped" > $(CLIENTS_CACHE)/unavailable; \
	elif timeout 300 npm ci --prefix $(CLIENTS_CACHE) --no-audit --no-fund --loglevel=error \
	    --fetch-retries=1 --fetch-timeout=60000 >$(CLIENTS_CACHE)/npm-ci.log 2>&1; then \
	  touch $@; \
	else \
	  log=$(CLIENTS_CACHE)/npm-ci.log; why=$$(grep -m1 -o 'FetchError: .*' $$log || grep -m1 'npm error' $$log || tail -n1 $$log); \
	  echo "npm ci of tests/clients/package-lock.json failed (npm registry unreachable?): $$why" > $(CLIENTS_CACHE)/unavailable; \
	fi
	@if [ -f $(CLIENTS_CACHE)/unavailable ]; then echo "warning: $$(cat $(CLIENTS_CACHE)/unavailable)"; fi

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

# Every drill across hosts, each on a new lab (needs root): the figures of docs/drills.md.
# The JSON goes to .cache/drills-lab.json, the HTML report (timeline plots) next to it.
drills-lab: setup
	@mkdir -p .cache
	PATH="$$PATH:/usr/sbin:/sbin" $(VENV)/bin/redkeeper drill --lab --fresh \
	  --report .cache/drills-lab.html --json > .cache/drills-lab.json; rc=$$?; \
	  $(PY) -m redkeeper.lab.summary .cache/drills-lab.json; exit $$rc

clean:
	rm -rf $(VENV) .redkeeper .pytest_cache .mypy_cache .ruff_cache .cache
