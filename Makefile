# The two set-up commands of the README: `make demo` and `make test`.
# Each installs what it needs and nothing more: `make demo` kstream alone (its runtime
# dependencies) in .venv; `make test` the test toolchain in the same .venv, and the
# Debian packages the interop peers are built from.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEBIAN_PACKAGES := golang-go golang-github-docker-spdystream-dev golang-github-gorilla-websocket-dev

.PHONY: test demo docs lint typecheck pytest venv debian-deps bench fuzz soak clean

# Everything: kstream and the dev group (tests, linters, docs: it includes the docs
# group, so it stands for the two other stamps too). pip >= 25.1 reads dependency groups.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=25.1"
	$(PY) -m pip install -q -e . --group dev
	touch $@ $(VENV)/.docs-installed $(VENV)/.demo-installed

# kstream alone, for the demo: no group, so the venv's own pip will do.
$(VENV)/.demo-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e .
	touch $@

# The API reference's tools only (make docs on its own).
$(VENV)/.docs-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=25.1"
	$(PY) -m pip install -q -e . --group docs
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

test: lint typecheck docs pytest

demo: $(VENV)/.demo-installed
	@$(PY) -m kstream.demo

# The API reference, from the docstrings, into docs/_build/html/api.html; any Sphinx
# warning (an unreadable docstring, a duplicate) fails the build.
docs: $(VENV)/.docs-installed
	$(PY) -m sphinx -E -W --keep-going -q -b html docs docs/_build/html

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
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache tests/peers/go/bin docs/_build
