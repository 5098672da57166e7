# The two commands a newcomer needs:
#   make serve   run the list server (SQLite and a Maildir under var/)
#   make test    run the test suite (lint, format check, mypy --strict, then pytest)
# Both create the virtual environment in .venv on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: serve test lint bench install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@# Byte-compile now, as pip does for a regular install: every CLI run starts faster.
	$(BIN)/python -m compileall -q listserv migrations > /dev/null
	touch $@

install: $(BIN)/.installed

serve: $(BIN)/.installed
	$(BIN)/listserv serve

test: $(BIN)/.installed
	-@scripts/install-browser-deps
	$(BIN)/ruff check listserv tests benchmarks migrations
	$(BIN)/ruff format --check listserv tests benchmarks migrations
	$(BIN)/mypy --strict listserv
	@# pytest exits 5 when it collected nothing: that is a failure too.
	$(BIN)/pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; exit $$rc

lint: $(BIN)/.installed
	$(BIN)/ruff check listserv tests benchmarks migrations
	$(BIN)/ruff format --check listserv tests benchmarks migrations
	$(BIN)/mypy --strict listserv

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
