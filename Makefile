# Two entry points a new user needs: `make run` (install, then the whole pipeline on the
# embedded shapes dataset) and `make test` (install, then the test suite). Both create
# the virtual environment when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kdcam-installed
WORKSPACE ?= demo-workspace

.PHONY: install run tui test lint bench browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/kdcam --workspace $(WORKSPACE) demo

tui: $(STAMP)
	$(BIN)/kdcam-tui --workspace $(WORKSPACE) --demo

test: $(STAMP) browser lint
	$(BIN)/python -m pytest -q

# The linter (with import sorting) and the type checker: a type error fails CI like a test.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# The report test opens report.html in a real headless Chromium. Install Debian's package
# when it is missing and we can (root with apt); elsewhere that test skips locally.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium not installed: the browser test will be skipped"; }

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
