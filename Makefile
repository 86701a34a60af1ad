# Every target creates and uses .venv itself; nothing needs installing by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
DEMO_STAMP  := $(VENV)/.installed-demo
BENCH_STAMP := $(VENV)/.installed-bench
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt
# The demo needs the core and the dashboard's server, not the test and benchmark stack; its
# install shows pip's progress (it is the first thing a newcomer waits for).
DEMO_EXTRAS := server
PIP_SHOWN := $(BIN)/python -m pip install --disable-pip-version-check --progress-bar on -c constraints.txt

.PHONY: demo shell test bench lint docs clean browser

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[dev]'
	touch $@

$(DEMO_STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing modelward[$(DEMO_EXTRAS)] into $(VENV) (once; \`make test\` adds the test stack)"
	$(PIP_SHOWN) -e '.[$(DEMO_EXTRAS)]'
	touch $@

$(BENCH_STAMP): $(STAMP)
	$(PIP) -e '.[dev,bench]'
	touch $@

demo: $(DEMO_STAMP)
	$(BIN)/python demo/build.py

# A shell with .venv active, so `modelward …` works (the same as `. .venv/bin/activate`).
shell: $(DEMO_STAMP)
	@echo "modelward is on PATH in this shell ($(VENV)/bin); \`exit\` leaves it"
	@VIRTUAL_ENV="$(CURDIR)/$(VENV)" PATH="$(CURDIR)/$(BIN):$$PATH" $${SHELL:-/bin/sh}

# Debian's Chromium for the dashboard's browser tests (Playwright drives /usr/bin/chromium;
# it never downloads a browser of its own).
browser:
	test -x /usr/bin/chromium || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --reruns 2 --reruns-delay 1

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench demo
	$(BIN)/lint-imports --no-logo

docs: $(STAMP)
	$(BIN)/python -m modelward.guards.docs docs/guards

clean:
	rm -rf $(VENV) .modelward demo-ledger
