"""ipympl (``%matplotlib widget``) in JupyterLab on kernel-comm-ext (examples/compat_ipympl)."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest

from .compat import LOOP, check_loop, record_loop_on_ipykernel, screenshot
from .lab import AUTOLOAD_KERNEL, NotebookPage, wait_until
from .widgets import assert_not_ours, assert_ours

if t.TYPE_CHECKING:
    from .conftest import OpenNotebook

pytestmark = [pytest.mark.browser, pytest.mark.compat]

NOTEBOOK = "compat_ipympl.ipynb"
CANVAS = ".jupyter-matplotlib-canvas-div canvas"
LOOP_CODE = f"for i in range({LOOP}):\n    fig.canvas.manager.set_window_title(f'frame {{i}}')"
FINAL = f"frame {LOOP - 1}"

# Pixels of the figure's canvas in the page that are pure red (the kernel's new facecolour).
RED_PIXELS = """(canvas) => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let red = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] > 240 && data[i + 1] < 16 && data[i + 2] < 16) red++;
  }
  return red / (canvas.width * canvas.height);
}"""


def open_figure(open_compat: OpenNotebook, kernel_name: str | None) -> NotebookPage:
    nb = open_compat(NOTEBOOK, kernel=kernel_name)
    nb.run_all()
    nb.page.locator(CANVAS).first.wait_for()
    return nb


def red_share(nb: NotebookPage) -> float:
    return float(nb.page.locator(CANVAS).first.evaluate(RED_PIXELS))


def label(nb: NotebookPage) -> str:
    return nb.page.locator(".jupyter-matplotlib-header").first.inner_text()


def test_ipympl_canvas(open_compat: OpenNotebook, screenshots: Path) -> None:
    nb = open_figure(open_compat, AUTOLOAD_KERNEL)
    kernel = nb.kernel()
    assert_ours(kernel)
    assert kernel.eval("type(fig.canvas.comm).__name__") == "KernelComm"
    # The first frame came as a binary buffer and is drawn: the canvas is not blank.
    wait_until(
        lambda: nb.page.locator(CANVAS).first.evaluate(
            "(c) => c.getContext('2d').getImageData(0, 0, c.width, c.height).data"
            ".some((v, i) => i % 4 === 3 && v > 0)"
        ),
        True,
        what="drawn pixels on the canvas",
    )
    assert red_share(nb) < 0.01

    # Kernel -> page: a redraw with a red axes background repaints the canvas.
    kernel.run("ax.set_facecolor('#ff0000')\nfig.canvas.draw_idle()")
    wait_until(lambda: red_share(nb) > 0.3, True, what="red pixels on the canvas")

    # Page -> kernel: a click on the canvas reaches the mpl_connect callback.
    box = nb.page.locator(CANVAS).first.bounding_box()
    assert box is not None
    nb.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_until(lambda: len(kernel.eval("presses")), 1, what="button presses in the kernel")
    # The left button, inside the axes (the click was at the figure's centre).
    assert kernel.eval("presses[0]") == (1, True)
    screenshot(nb.cell(2).locator(".jp-OutputArea"), screenshots / "compat-ipympl.png")

    kernel.run(LOOP_CODE)
    check_loop("ipympl", lambda: label(nb), FINAL)
    assert kernel.eval("fig.canvas._figure_label") == FINAL
    assert_ours(kernel)


def test_ipympl_loop_on_ipykernel(open_compat: OpenNotebook) -> None:
    nb = open_figure(open_compat, None)
    kernel = nb.kernel()
    assert_not_ours(kernel)
    kernel.run(LOOP_CODE)
    record_loop_on_ipykernel("ipympl", lambda: label(nb), FINAL)
