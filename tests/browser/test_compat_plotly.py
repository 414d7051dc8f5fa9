"""plotly ``FigureWidget`` in JupyterLab on kernel-comm-ext (examples/compat_plotly.ipynb)."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from playwright.sync_api import expect

from kernel_comm_ext.testing.client_common import is_idle_of

from .compat import LOOP, check_loop, record_loop_on_ipykernel, screenshot
from .lab import AUTOLOAD_KERNEL, NotebookPage, wait_until
from .widgets import assert_not_ours, assert_ours

if t.TYPE_CHECKING:
    from .conftest import OpenNotebook

pytestmark = [pytest.mark.browser, pytest.mark.compat]

NOTEBOOK = "compat_plotly.ipynb"
# plotly.js keeps the figure it draws on its graph div: data, layout, and the full versions.
GRAPH = "() => { const g = document.querySelector('.js-plotly-plot'); return g && "
LOOP_CODE = f"for i in range({LOOP}):\n    fig.data[0].y = [i, i + 1, i + 2, i + 3]"
FINAL = [LOOP - 1, LOOP, LOOP + 1, LOOP + 2]


def page_y(nb: NotebookPage) -> t.Any:
    """The y values of the first trace as plotly.js holds them in the page."""
    return nb.page.evaluate(GRAPH + "Array.from(g.data[0].y); }")


def open_figure(open_compat: OpenNotebook, kernel_name: str | None) -> NotebookPage:
    nb = open_compat(NOTEBOOK, kernel=kernel_name)
    nb.run_all()
    nb.page.locator(".js-plotly-plot .scatterlayer .point").first.wait_for()
    return nb


def test_plotly_figure_widget(open_compat: OpenNotebook, screenshots: Path) -> None:
    nb = open_figure(open_compat, AUTOLOAD_KERNEL)
    kernel = nb.kernel()
    assert_ours(kernel)
    expect(nb.page.locator(".js-plotly-plot .scatterlayer .point")).to_have_count(4)
    assert page_y(nb) == [10, 20, 15, 25]

    # Kernel -> page: a restyle (new y values, a colour) and a relayout (title, axis range).
    kernel.run("fig.data[0].y = [5, 6, 7, 8]\nfig.data[0].marker.color = 'crimson'")
    wait_until(lambda: page_y(nb), [5, 6, 7, 8], what="y in the page")
    wait_until(
        lambda: nb.page.evaluate(GRAPH + "g._fullData[0].marker.color; }"),
        "crimson",
        what="marker colour in the page",
    )
    kernel.run("fig.layout.title.text = 'restyled from the kernel'")
    kernel.run("fig.layout.xaxis.range = [0, 5]")
    expect(nb.page.locator(".js-plotly-plot .gtitle")).to_have_text("restyled from the kernel")
    wait_until(
        lambda: nb.page.evaluate(GRAPH + "g._fullLayout.xaxis.range; }"),
        [0, 5],
        what="x range in the page",
    )

    # Page -> kernel: a click on the third point runs the trace's on_click.
    point = nb.page.locator(".js-plotly-plot .scatterlayer .point").nth(2)
    box = point.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    nb.page.mouse.move(x, y)
    nb.page.mouse.click(x, y)
    wait_until(lambda: kernel.eval("clicked"), [2], what="points clicked, in the kernel")
    screenshot(nb.cell(2).locator(".jp-OutputArea"), screenshots / "compat-plotly.png")
    assert_ours(kernel)


def test_plotly_loop_of_restyles(open_compat: OpenNotebook) -> None:
    nb = open_figure(open_compat, AUTOLOAD_KERNEL)
    kernel = nb.kernel()
    assert_ours(kernel)
    kernel.run(LOOP_CODE)
    assert kernel.eval("list(fig.data[0].y)") == FINAL
    check_loop("plotly", lambda: page_y(nb), FINAL)


def test_plotly_loop_on_ipykernel(open_compat: OpenNotebook) -> None:
    nb = open_figure(open_compat, None)
    kernel = nb.kernel()
    assert_not_ours(kernel)
    # On this layer the kernel's IOPub socket drops what a reader has no room for, the
    # cell's idle status included: the cell's end is its execute_reply (the shell channel
    # drops nothing), and whether the idle status came is read once the page has settled.
    msg_id = kernel.run_until_reply(LOOP_CODE, timeout=120)
    record_loop_on_ipykernel("plotly", lambda: page_y(nb), FINAL)
    if not any(is_idle_of(m, msg_id) for m in kernel.iopub("status", parent_id=msg_id)):
        print("plotly on ipykernel: the loop's idle status never came")
