"""ipyleaflet in JupyterLab on kernel-comm-ext (examples/compat_ipyleaflet.ipynb), tiles-free."""

from __future__ import annotations

import math
import typing as t
from pathlib import Path

import pytest

from .compat import LOOP, check_loop, record_loop_on_ipykernel, screenshot
from .lab import AUTOLOAD_KERNEL, NotebookPage, wait_until
from .widgets import assert_not_ours, assert_ours

if t.TYPE_CHECKING:
    from .conftest import OpenNotebook

pytestmark = [pytest.mark.browser, pytest.mark.compat]

NOTEBOOK = "compat_ipyleaflet.ipynb"
MAP = ".leaflet-container"
BOX = ".leaflet-overlay-pane path"
LOOP_CODE = f"for i in range({LOOP}):\n    m.zoom = 2 + i % 4"
FINAL_ZOOM = 2 + (LOOP - 1) % 4


def geometry(nb: NotebookPage) -> dict[str, float]:
    """Where the rectangle is drawn: its centre relative to the map's centre, and its width."""
    area = nb.page.locator(MAP).first.bounding_box()
    box = nb.page.locator(BOX).first.bounding_box()
    assert area is not None
    assert box is not None
    return {
        "dx": box["x"] + box["width"] / 2 - (area["x"] + area["width"] / 2),
        "dy": box["y"] + box["height"] / 2 - (area["y"] + area["height"] / 2),
        "width": box["width"],
    }


def page_zoom(nb: NotebookPage, width_at_4: float) -> int:
    """The zoom the page shows, from the rectangle's width (twice as wide each level)."""
    return 4 + round(math.log2(geometry(nb)["width"] / width_at_4))


def open_map(open_compat: OpenNotebook, kernel_name: str | None) -> NotebookPage:
    nb = open_compat(NOTEBOOK, kernel=kernel_name)
    nb.run_all()
    nb.page.locator(BOX).first.wait_for()
    return nb


def test_ipyleaflet_map(open_compat: OpenNotebook, screenshots: Path) -> None:
    nb = open_map(open_compat, AUTOLOAD_KERNEL)
    kernel = nb.kernel()
    assert_ours(kernel)
    # No tile layer: the page has no tile images at all.
    assert nb.page.locator(".leaflet-tile").count() == 0
    start = geometry(nb)
    assert abs(start["dx"]) < 2
    assert abs(start["dy"]) < 2
    width = start["width"]

    # Kernel -> page: a new centre puts the rectangle off-centre; a new zoom doubles it.
    kernel.run("m.center = (0, 10)")
    wait_until(lambda: round(geometry(nb)["dx"] / width), -1, what="rectangle one width left")
    kernel.run("m.center = (0, 0)\nm.zoom = 5")
    wait_until(lambda: page_zoom(nb, width), 5, what="zoom on the page")

    # Page -> kernel: a drag pans the map, and the kernel's centre follows.
    area = nb.page.locator(MAP).first.bounding_box()
    assert area is not None
    cx, cy = area["x"] + area["width"] / 2, area["y"] + area["height"] / 2
    nb.page.mouse.move(cx, cy)
    nb.page.mouse.down()
    nb.page.mouse.move(cx - 100, cy, steps=10)
    nb.page.mouse.up()
    # Dragging the map left moves its centre east.
    wait_until(lambda: kernel.eval("m.center[1] > 1"), True, what="kernel's centre after the pan")
    assert abs(kernel.eval("m.center[0]")) < 1
    screenshot(nb.page.locator(MAP).first, screenshots / "compat-ipyleaflet.png")

    kernel.run(LOOP_CODE)
    check_loop("ipyleaflet", lambda: page_zoom(nb, width), FINAL_ZOOM)
    assert kernel.eval("m.zoom") == FINAL_ZOOM
    assert_ours(kernel)


def test_ipyleaflet_loop_on_ipykernel(open_compat: OpenNotebook) -> None:
    nb = open_map(open_compat, None)
    assert_not_ours(nb.kernel())
    width = geometry(nb)["width"]
    nb.kernel().run(LOOP_CODE)
    record_loop_on_ipykernel("ipyleaflet", lambda: page_zoom(nb, width), FINAL_ZOOM)
