"""Shared steps of the compatibility suite: the 2,000-change loop, screenshots, versions.

Every library test runs its notebook on an auto-enabled kernel and asserts the
page ends on the kernel's final state after a loop of changes from one cell;
the same loop on ipykernel's own comm layer is only recorded (printed and
appended to ``test-artifacts/compat-loops.tsv``) so the two can be compared.
"""

from __future__ import annotations

import dataclasses
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
# A page whose value has not moved for this long has stopped short of the loop's end.
STALL = 5.0


def version(package: str) -> str:
    """The installed version of ``package`` (for the record of what was tested)."""
    return importlib.metadata.version(package)


@dataclasses.dataclass
class Outcome:
    """How the page ended after a loop: on the final value, stalled, or still catching up."""

    reached: bool
    stalled: bool
    value: t.Any
    seconds: float

    def describe(self) -> str:
        if self.reached:
            return f"final state shown after {self.seconds:.1f} s"
        if self.stalled:
            return f"page stale: stopped at {self.value!r} ({self.seconds:.1f} s)"
        return f"page still catching up after {self.seconds:.1f} s, at {self.value!r}"


def wait_for_page(
    read: t.Callable[[], t.Any], expected: t.Any, timeout: float, stall: float = STALL
) -> Outcome:
    """Poll the page until ``read()`` gives ``expected``, stops changing, or time runs out.

    A page still working through the changes (the value moves) gets up to ``timeout``;
    one whose value has not moved for ``stall`` seconds has stopped short.
    """
    start = changed = time.monotonic()
    value = read()
    while value != expected:
        now = time.monotonic()
        if now - changed > stall:
            return Outcome(False, True, value, now - start)
        if now - start > timeout:
            return Outcome(False, False, value, now - start)
        time.sleep(0.1)
        latest = read()
        if latest != value:
            value, changed = latest, time.monotonic()
    return Outcome(True, False, value, time.monotonic() - start)


_logged: list[str] = []


def record(library: str, layer: str, outcome: Outcome) -> None:
    """Print and log how a loop ended on one comm layer (the log holds this run's lines)."""
    line = f"{library}\t{layer}\t{outcome.describe()}"
    print(f"loop of {LOOP} changes: {line}")
    LOOP_LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOOP_LOG.open("a" if _logged else "w") as log:
        log.write(line + "\n")
    _logged.append(line)


def check_loop(
    library: str, read: t.Callable[[], t.Any], expected: t.Any, timeout: float = 60.0
) -> None:
    """On kernel-comm-ext: the page must end on ``expected``; the outcome is also recorded."""
    outcome = wait_for_page(read, expected, timeout)
    record(library, "kernel-comm-ext", outcome)
    assert outcome.reached, f"{library}: after {LOOP} changes, {outcome.describe()}"


def record_loop_on_ipykernel(
    library: str, read: t.Callable[[], t.Any], expected: t.Any, timeout: float = 30.0
) -> None:
    """On ipykernel's own comm layer: record whether the page ends on ``expected``."""
    record(library, "ipykernel", wait_for_page(read, expected, timeout))


def screenshot(target: Locator, path: Path) -> None:
    """Save a screenshot of one part of the page (kept small for docs/screenshots)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target.screenshot(path=str(path))
