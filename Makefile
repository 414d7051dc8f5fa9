# Two commands do everything on a fresh machine with Python >= 3.10:
#   make demo   - headless demo: a real kernel with the extension, comms both ways
#   make test   - lint, type check and the whole test suite
#   make test-fast - lint, type check and the unit tests (no kernel; under a minute)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-fast unit lint typecheck pytest chromium screenshots clean bench bench-quick bench-setup

# The browser tests drive Debian's chromium; no tool may download a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/python examples/demo.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup chromium
	$(BIN)/python -m pytest

# Debian's chromium (and its driver) for the browser tests, installed when missing.
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q \
		&& DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium chromium-driver; }

# Refresh the screenshots README shows (the browser tests save theirs in test-artifacts/).
screenshots: setup chromium
	KERNEL_COMM_EXT_SCREENSHOTS=$(CURDIR)/docs/screenshots \
		$(BIN)/python -m pytest -m browser \
		-k "test_widgets_on_the_extension or (test_compat_ and not ipykernel and not loop_of)"

test: lint typecheck pytest

# Unit tests of single classes against small fakes (tests/unit/): no kernel is started.
unit: setup
	$(BIN)/python -m pytest tests/unit -q

test-fast: lint typecheck unit

# Side-by-side benchmark against ipykernel's comm layer (benchmarks/README.md); ~10 min.
bench: setup
	$(BIN)/python benchmarks/run.py

bench-quick: setup
	$(BIN)/python benchmarks/run.py --quick

# py-spy for benchmarks/profile_kernel.py
bench-setup: setup
	$(BIN)/python -m pip install --quiet -e '.[bench]'

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache
