# Two entry points (see README): `make demo` runs the notebook series on the embedded data with the
# quick preset (`make reproduce`: its full plan); `make test` runs the test suite. Both create .venv and install the kit on first use.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PRESET ?= quick

.PHONY: demo reproduce test bench robustness setup clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[notebooks,test]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m fapkit.series --preset $(PRESET)

# Every table over 3 seeds (fapkit.plans, scope "full"); add ARGS="--workers 2" or ARGS="--scheduler tcp://HOST:PORT".
reproduce: setup
	$(PY) -m fapkit.series --preset $(PRESET) --scope full $(ARGS)

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -q

bench: setup
	$(PY) -m fapkit.bench

robustness: setup
	$(PY) -m fapkit.bench.robustness

clean:
	rm -rf build results figures runs data/cache
