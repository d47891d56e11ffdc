# The two set-up commands of the README: `make demo` and `make test`.
# Both install what they need: the virtualenv, the Python packages, and the Debian
# packages the interop peers are built from.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEBIAN_PACKAGES := golang-go golang-github-docker-spdystream-dev golang-github-gorilla-websocket-dev

.PHONY: test demo lint typecheck pytest venv debian-deps bench fuzz soak clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=25.1"
	$(PY) -m pip install -q -e . --group dev
	touch $@

venv: $(VENV)/.installed

# Debian packages for the Go interop peer (spdystream + gorilla/websocket), installed
# only when missing. CI and developers run as root.
debian-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' \
	    || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

lint: venv
	$(VENV)/bin/ruff check .

typecheck: venv
	$(PY) -m mypy

# Coverage of the library (branches too), child processes included (serve, the CLI).
pytest: venv debian-deps
	$(PY) -m pytest -q --cov --cov-report=term

test: lint typecheck pytest

demo: venv
	$(PY) -m kstream.demo

bench: venv debian-deps
	$(PY) -m benchmarks

# A coverage-guided fuzz campaign (atheris) over every target of tests/fuzz/targets.py;
# failing inputs are saved to tests/fuzz/regressions/, which make test replays.
FUZZ_SECONDS ?= 600
fuzz: venv
	$(PY) -m pip install -q --group fuzz
	$(PY) -m tests.fuzz --seconds $(FUZZ_SECONDS)

# Hundreds of mixed sessions against kstream serve and the Go peer under random faults,
# for SOAK_SECONDS (600 by default); fails on a corrupted session, memory over its bound,
# leaked descriptors or terminals, or a traceback.
SOAK_SECONDS ?= 600
soak: venv debian-deps
	$(PY) -m tests.soak --seconds $(SOAK_SECONDS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache tests/peers/go/bin
