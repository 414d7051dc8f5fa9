"""ipydatagrid in JupyterLab on kernel-comm-ext (examples/compat_ipydatagrid.ipynb)."""

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

NOTEBOOK = "compat_ipydatagrid.ipynb"
GRID = ".jp-OutputArea .p-DataGrid, .jp-OutputArea .lm-DataGrid"
# Cell geometry as the notebook sets it: a 64 px row header, 20 px column header, 64 x 20 cells.
HEADER_W, HEADER_H, CELL_W, CELL_H = 64, 20, 64, 20
# Pure red pixels on the grid's visible canvas (the renderer's mark of the value 999).
RED_PIXELS = """(grid) => {
  const canvas = grid.querySelector("canvas");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let red = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] > 240 && data[i + 1] < 16 && data[i + 2] < 16) red++;
  }
  return red;
}"""
# One cell's worth of red pixels, less its borders and text.
CELL = 600
# The tallest run of red pixels in one column of the canvas: a red cell's height less its border.
RED_HEIGHT = """(grid) => {
  const canvas = grid.querySelector("canvas");
  const { width, height } = canvas;
  const data = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  const red = (x, y) => {
    const i = 4 * (y * width + x);
    return data[i] > 240 && data[i + 1] < 16;
  };
  let best = 0;
  for (let x = 0; x < width; x += 3) {
    let run = 0;
    for (let y = 0; y < height; y++) { run = red(x, y) ? run + 1 : 0; best = Math.max(best, run); }
  }
  return best / window.devicePixelRatio;
}"""
# Each cell change repaints the whole grid in the page (tens of ms each, on either comm layer),
# so the loop changes the row height, a synced trait: 12 to 27 px, ending on 12 + 1999 % 16.
LOOP_CODE = f"for i in range({LOOP}):\n    grid.base_row_size = 12 + i % 16"
FINAL_ROW = 12 + (LOOP - 1) % 16


def red_cells(nb: NotebookPage) -> int:
    """Roughly how many cells the page paints red."""
    return int(nb.page.locator(GRID).first.evaluate(RED_PIXELS)) // CELL


def row_height(nb: NotebookPage) -> int:
    """The red cell's height on the page, in CSS pixels, less its border."""
    return round(float(nb.page.locator(GRID).first.evaluate(RED_HEIGHT)))


def open_grid(open_compat: OpenNotebook, kernel_name: str | None) -> NotebookPage:
    nb = open_compat(NOTEBOOK, kernel=kernel_name)
    nb.run_all()
    nb.page.locator(GRID).first.wait_for()
    nb.page.locator(GRID).first.locator("canvas").first.wait_for()
    return nb


def test_ipydatagrid_grid(open_compat: OpenNotebook, screenshots: Path) -> None:
    nb = open_grid(open_compat, AUTOLOAD_KERNEL)
    kernel = nb.kernel()
    assert_ours(kernel)
    assert red_cells(nb) == 0

    # Kernel -> page: a new value in a cell repaints it red.
    kernel.run("grid.set_cell_value_by_index('a', 1, 999)")
    wait_until(lambda: red_cells(nb) >= 1, True, what="a red cell on the page")
    kernel.run("grid.set_cell_value_by_index('a', 1, 2)")
    wait_until(lambda: red_cells(nb), 0, what="no red cell on the page")
    # A whole new DataFrame shows too.
    kernel.run("grid.data = pd.DataFrame({'a': [999, 999], 'b': [999, 1], 'c': [1, 2]})")
    wait_until(lambda: red_cells(nb) >= 3, True, what="the new frame's red cells")
    kernel.run("grid.data = df")
    wait_until(lambda: red_cells(nb), 0, what="the first frame back")

    # Page -> kernel: a click on the cell of row 2, column "b" selects it in the kernel.
    box = nb.page.locator(GRID).first.bounding_box()
    assert box is not None
    nb.page.mouse.click(box["x"] + HEADER_W + CELL_W * 1.5, box["y"] + HEADER_H + CELL_H * 2.5)
    wait_until(
        lambda: kernel.eval("[(s['r1'], s['c1']) for s in grid.selections]"),
        [(2, 1)],
        what="selection in the kernel",
    )
    kernel.run("grid.set_cell_value_by_index('b', 2, 999)")
    wait_until(lambda: red_cells(nb) >= 1, True, what="the selected cell red")
    screenshot(nb.page.locator(GRID).first, screenshots / "compat-ipydatagrid.png")

    border = CELL_H - row_height(nb)
    # Every DataGrid update repaints the whole grid, so 2,000 of them would keep the page
    # busy for a minute; the row size is plain state, which kernel-comm-ext merges while
    # updates wait (README, "Delivery under load"), with no setting.
    kernel.run(LOOP_CODE)
    check_loop("ipydatagrid", lambda: row_height(nb) + border, FINAL_ROW)
    assert kernel.eval("get_ipython().kernel.comm_manager.delivery_stats().coalesced") > 0
    assert_ours(kernel)


def test_ipydatagrid_loop_on_ipykernel(open_compat: OpenNotebook) -> None:
    nb = open_grid(open_compat, None)
    kernel = nb.kernel()
    assert_not_ours(kernel)
    kernel.run("grid.set_cell_value_by_index('b', 2, 999)")
    wait_until(lambda: red_cells(nb) >= 1, True, what="the red cell")
    border = CELL_H - row_height(nb)
    kernel.run(LOOP_CODE)
    record_loop_on_ipykernel("ipydatagrid", lambda: row_height(nb) + border, FINAL_ROW)
