"""bqplot in JupyterLab on kernel-comm-ext (examples/compat_bqplot.ipynb)."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .compat import LOOP, check_loop, record_loop_on_ipykernel, screenshot
from .lab import AUTOLOAD_KERNEL, NotebookPage, wait_until
from .widgets import assert_not_ours, assert_ours

if t.TYPE_CHECKING:
    from .conftest import OpenNotebook

pytestmark = [pytest.mark.browser, pytest.mark.compat]

NOTEBOOK = "compat_bqplot.ipynb"
DOTS = ".bqplot .object_grp .dot"
# Each change sends both arrays (NumPy, as binary buffers); the dot count tells them apart.
LOOP_CODE = (
    f"for i in range({LOOP}):\n"
    "    with scatter.hold_sync():\n"
    "        scatter.x = np.arange(i % 40 + 1, dtype=float)\n"
    "        scatter.y = np.arange(i % 40 + 1, dtype=float)"
)
FINAL = (LOOP - 1) % 40 + 1


def open_figure(open_compat: OpenNotebook, kernel_name: str | None) -> NotebookPage:
    nb = open_compat(NOTEBOOK, kernel=kernel_name)
    nb.run_all()
    expect(nb.page.locator(DOTS)).to_have_count(10)
    return nb


def test_bqplot_scatter(open_compat: OpenNotebook, screenshots: Path) -> None:
    nb = open_figure(open_compat, AUTOLOAD_KERNEL)
    kernel = nb.kernel()
    assert_ours(kernel)
    assert kernel.eval("type(scatter.comm).__name__") == "KernelComm"
    expect(nb.page.locator(".bqplot .mainheading")).to_have_text("bqplot scatter")

    # Kernel -> page: new NumPy data (binary buffers) redraw the scatter.
    kernel.run(
        "with scatter.hold_sync():\n"
        "    scatter.x = np.linspace(0, 45, 25)\n"
        "    scatter.y = np.linspace(45, 0, 25)"
    )
    expect(nb.page.locator(DOTS)).to_have_count(25)
    kernel.run("fig.title = 'new data from the kernel'")
    expect(nb.page.locator(".bqplot .mainheading")).to_have_text("new data from the kernel")

    # Page -> kernel: a click on a dot selects it, and the selection reaches the kernel.
    nb.page.locator(DOTS).nth(3).click()
    wait_until(
        lambda: kernel.eval("[int(i) for i in scatter.selected or ()]"),
        [3],
        what="selection in the kernel",
    )
    screenshot(nb.cell(2).locator(".jp-OutputArea"), screenshots / "compat-bqplot.png")

    kernel.run(LOOP_CODE)
    check_loop("bqplot", lambda: nb.page.locator(DOTS).count(), FINAL)
    assert_ours(kernel)


def test_bqplot_loop_on_ipykernel(open_compat: OpenNotebook) -> None:
    nb = open_figure(open_compat, None)
    assert_not_ours(nb.kernel())
    nb.kernel().run(LOOP_CODE)
    record_loop_on_ipykernel("bqplot", lambda: nb.page.locator(DOTS).count(), FINAL)
