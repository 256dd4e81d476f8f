# Set-up and everyday commands. Each target creates the virtual environment
# in .venv and installs the pinned dependencies first when they are missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench evaluate lint clean

demo: $(STAMP)
	$(BIN)/python pipeline.py once

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/replay.py

evaluate: $(STAMP)
	$(BIN)/python pipeline.py evaluate --labels ../shared/eval/dev.jsonl

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

clean:
	rm -rf data/ bench/out/
