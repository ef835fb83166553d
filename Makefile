# Two entry points: `make demo` and `make test`. Both create .venv/ on first use.
# `make test-fast` runs ruff and the unit tests only (no browser, notebook, packaging or
# process tier).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FAST := not browser and not notebook and not packaging and not process

.PHONY: setup demo test test-fast browser-deps lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,baselines]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/tsimcne-widgets demo

lint: setup
	$(VENV)/bin/ruff check .

test: setup lint browser-deps
	$(PY) -m pytest

# The unit tier on every core (pytest-xdist): about 100 s on 2 cores instead of 140 s.
test-fast: setup lint
	$(PY) -m pytest -n auto -m "$(FAST)"

# Debian's chromium for tests/browser/ (driven by Playwright, which downloads no browser).
# Installed as root, or with passwordless sudo; otherwise a warning, and the browser tests
# skip with the reason.
browser-deps:
	@if [ -n "$$CHROMIUM" ] && [ -x "$$CHROMIUM" ] || [ -x /usr/bin/chromium ]; then \
		exit 0; \
	elif ! command -v apt-get >/dev/null; then \
		echo "warning: no apt-get to install chromium; the browser tests will be skipped"; \
	else \
		if [ "$$(id -u)" = 0 ]; then SUDO=; \
		elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
		else echo "warning: installing chromium needs root or passwordless sudo;" \
			"the browser tests will be skipped"; exit 0; fi; \
		echo "installing chromium with apt-get"; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
			|| echo "warning: apt-get could not install chromium;" \
				"the browser tests will be skipped"; \
	fi

bench: setup
	$(PY) bench/train_throughput.py

clean:
	rm -rf $(VENV) build dist *.egg-info
