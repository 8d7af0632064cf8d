# Two entry points a new user needs: `make run` (install, then the whole pipeline on the
# embedded shapes dataset) and `make test` (install, then the test suite). Both create
# the virtual environment when it is missing. `make run` installs what kdcam needs to run
# (plus TensorBoard event files); `make test` adds the test tools (pytest, grad-cam, ruff, mypy).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kdcam-installed
TEST_STAMP := $(VENV)/.kdcam-test-installed
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check
WORKSPACE ?= demo-workspace

.PHONY: install run tui tui-demo test lint bench browser terminal docs-screenshots docs-screens clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[tensorboard]'
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PIP) -e '.[tensorboard,test]'
	touch $(TEST_STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/kdcam --workspace $(WORKSPACE) demo

# Browse an existing workspace (make tui WORKSPACE=path; default: the one make run wrote).
tui: $(STAMP)
	$(BIN)/kdcam-tui --workspace $(WORKSPACE)

# Build the demo workspace inside the TUI, training live.
tui-demo: $(STAMP)
	$(BIN)/kdcam-tui --workspace $(WORKSPACE) --demo

test: $(TEST_STAMP) browser terminal lint
	$(BIN)/python -m pytest -q

# The linter (with import sorting) and the type checker: a type error fails CI like a test.
lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# The report test opens report.html in a real headless Chromium. Install Debian's package
# when it is missing and we can (root with apt); elsewhere that test skips locally.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium not installed: the browser test will be skipped"; }

# The inline-image tests run the TUI in real terminals (xterm with Sixel, kitty on Mesa's
# software OpenGL, xterm+tmux; under Xvfb, keys by xdotool, screenshots by ImageMagick). Installed like Chromium: root with apt, else skipped.
terminal:
	@command -v Xvfb >/dev/null 2>&1 && command -v xterm >/dev/null 2>&1 && command -v xdotool >/dev/null 2>&1 && \
	  command -v import >/dev/null 2>&1 && command -v kitty >/dev/null 2>&1 && command -v tmux >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb xterm xdotool imagemagick \
	    kitty tmux fonts-dejavu-core >/dev/null; } || echo "xvfb/xterm/kitty/tmux/xdotool/imagemagick not installed: the terminal-image tests will be skipped"; }

# The README's browser pictures (Sixel, kitty, half-blocks), taken by the terminal-image tests.
docs-screenshots: $(TEST_STAMP) terminal
	KDCAM_SCREENSHOTS=docs $(BIN)/python -m pytest -q tests/test_terminal_images.py

# Text captures of every screen and CLI list under tmux at 80x24 and 120x40 (docs/screens/).
docs-screens: $(STAMP)
	$(BIN)/python docs/screens/capture.py $(WORKSPACE)

bench: $(TEST_STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
