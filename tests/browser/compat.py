"""Shared steps of the compatibility suite: the 2,000-change loop, screenshots, versions.

Every library test runs its notebook on an auto-enabled kernel and asserts the
page ends on the kernel's final state after a loop of changes from one cell;
the same loop on ipykernel's own comm layer is only recorded (printed and
appended to ``test-artifacts/compat-loops.tsv``) so the two can be compared.
"""

from __future__ import annotations

import importlib.metadata
import time
import typing as t
from pathlib import Path

if t.TYPE_CHECKING:
    from playwright.sync_api import Locator

REPO = Path(__file__).resolve().parents[2]
LOOP_LOG = REPO / "test-artifacts" / "compat-loops.tsv"

# How many changes the loop makes from one cell.
LOOP = 2_000


def version(package: str) -> str:
    """The installed version of ``package`` (for the record of what was tested)."""
    return importlib.metadata.version(package)


def wait_for_page(
    read: t.Callable[[], t.Any], expected: t.Any, timeout: float
) -> tuple[bool, t.Any, float]:
    """Poll the page until ``read()`` gives ``expected``: (reached, last value, seconds)."""
    start = time.monotonic()
    value = read()
    while value != expected and time.monotonic() - start < timeout:
        time.sleep(0.1)
        value = read()
    return value == expected, value, time.monotonic() - start


def record(library: str, layer: str, reached: bool, value: t.Any, seconds: float) -> str:
    """Print and log how a loop ended on one comm layer; return the line."""
    outcome = "final state shown" if reached else f"page stale, shows {value!r}"
    line = f"{library}\t{layer}\t{outcome}\t{seconds:.1f} s"
    print(f"loop of {LOOP} changes: {line}")
    LOOP_LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOOP_LOG.open("a") as log:
        log.write(line + "\n")
    return line


def check_loop(
    library: str, read: t.Callable[[], t.Any], expected: t.Any, timeout: float = 30.0
) -> None:
    """On kernel-comm-ext: the page must end on ``expected``; the outcome is also recorded."""
    reached, value, seconds = wait_for_page(read, expected, timeout)
    record(library, "kernel-comm-ext", reached, value, seconds)
    assert reached, f"{library}: after {LOOP} changes the page shows {value!r}, not {expected!r}"


def record_loop_on_ipykernel(
    library: str, read: t.Callable[[], t.Any], expected: t.Any, timeout: float = 30.0
) -> None:
    """On ipykernel's own comm layer: record whether the page ends on ``expected``."""
    reached, value, seconds = wait_for_page(read, expected, timeout)
    record(library, "ipykernel", reached, value, seconds)


def screenshot(target: Locator, path: Path) -> None:
    """Save a screenshot of one part of the page (kept small for docs/screenshots)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target.screenshot(path=str(path))
