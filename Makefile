# Every target creates and uses .venv itself; nothing needs installing by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: demo test bench lint docs clean browser

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[dev]'
	touch $@

$(BENCH_STAMP): $(STAMP)
	$(PIP) -e '.[dev,bench]'
	touch $@

demo: $(STAMP)
	$(BIN)/python demo/build.py

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
