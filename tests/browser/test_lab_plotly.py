"""A plotly loop in JupyterLab in a real browser, on kernel-comm-ext (examples/plotly_loop.ipynb).

The notebook edits a ``FigureWidget``'s trace 2,000 times in one cell; each
edit reaches the page as a restyle that plotly's JavaScript draws. The test
reads the trace plotly drew from the page (the graph div's ``data``), never
from the kernel, and compares it with the kernel's. It needs the merge rule of
README's "Delivery under load": when every widget's updates are merged by key,
the page stays on a stale trace.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest

from .lab import wait_until
from .widgets import assert_ours

if t.TYPE_CHECKING:
    from .conftest import OpenNotebook

pytestmark = pytest.mark.browser

LAST_Y = [1999, 2000, 2001]
# The first trace as plotly drew it (null until the plot is on the page).
DRAWN_Y = """() => {
  const plot = document.querySelector('.js-plotly-plot');
  return plot && plot.data && plot.data.length ? Array.from(plot.data[0].y) : null;
}"""


def test_plotly_loop_ends_on_the_kernels_trace(
    open_notebook: OpenNotebook, screenshots: Path
) -> None:
    nb = open_notebook("plotly_loop.ipynb")
    nb.run_all()
    kernel = nb.kernel()
    assert_ours(kernel)
    assert kernel.eval("list(fig.data[0].y)") == LAST_Y
    assert kernel.eval("fig._last_trace_edit_id") >= 2000

    wait_until(lambda: nb.page.evaluate(DRAWN_Y), LAST_Y, timeout=60, what="trace on the page")
    nb.screenshot(screenshots / "plotly-loop-on-kernel-comm-ext.png")
    assert_ours(kernel)
