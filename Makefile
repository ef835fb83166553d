# Two entry points: `make demo` and `make test`. Both create .venv/ on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

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

test: setup lint
	$(PY) -m pytest

bench: setup
	$(PY) bench/train_throughput.py

clean:
	rm -rf $(VENV) build dist *.egg-info
