# Two commands for a newcomer:
#   make demo   installs everything (venv, Python packages, Graphviz) and replays the example log
#   make test   runs the whole test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo install test lint diagrams bench clean

demo: install
	$(BIN)/python -m statemachine replay examples/collaborations.jsonl; test $$? -le 1

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,service]'
	$(BIN)/python -m pip install -q -e '.[test-html]'  # the HTML report and its browser test (issue 19)
	$(BIN)/python -m pip install -q -e '.[dask]'  # replay at scale on Dask, Parquet output (issue 13)
	touch $(STAMP)

test: install
	$(BIN)/ruff check statemachine tests examples benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest --lifecycle-coverage-domain statemachine.lifecycles:DOMAIN --lifecycle-coverage-fail-under 100

diagrams: install
	$(BIN)/python -m statemachine diagrams

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# Not part of CI (minutes, not seconds): the curated mutation run over the money and time
# rules (scripts/mutants.toml). `python scripts/mutants.py --check` checks the list alone.
.PHONY: mutants
mutants: install
	nice -n 10 $(BIN)/python scripts/mutants.py
