# siteplanner: `make demo` runs the bundled city; `make test` runs the suite, ruff and mypy.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint fuzz bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/siteplanner demo

lint: $(STAMP)
	$(BIN)/ruff check siteplanner tests benchmarks cli.py notebooks
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/pytest -q -n 2 --dist loadfile --durations=15

# The property tests with 10,000 random examples each (the suite runs a few hundred).
fuzz: $(STAMP)
	SITEPLANNER_FUZZ_EXAMPLES=10000 $(BIN)/pytest -q -m fuzz -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_rank.py

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
