# Two entry points a new user needs: `make run` (install, then the whole pipeline on the
# embedded shapes dataset) and `make test` (install, then the test suite). Both create
# the virtual environment when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kdcam-installed
WORKSPACE ?= demo-workspace

.PHONY: install run tui test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/kdcam --workspace $(WORKSPACE) demo

tui: $(STAMP)
	$(BIN)/kdcam-tui --workspace $(WORKSPACE) --demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
