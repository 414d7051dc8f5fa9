"""Widgets while cells run, in JupyterLab with its default settings (comms over subshells).

ipywidgets' ``interactive`` drawing a matplotlib figure is moved from the
keyboard while cells draw their own figures: every rendering is the same
image and every cell keeps its figure. Then an async cell awaits a click on a
button (``kernel_comm_ext.wait_for_msg``) and goes on when the browser clicks.
README: "Callbacks and the running cell".
"""

from __future__ import annotations

import json
import typing as t

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from playwright.sync_api import expect

from .lab import NotebookPage, wait_until
from .widgets import Slider, assert_ours

if t.TYPE_CHECKING:
    from playwright.sync_api import Browser

    from .lab import LabServer

pytestmark = pytest.mark.browser

MOVES = 12

CELLS = [
    "%load_ext kernel_comm_ext",
    "%matplotlib inline\n"
    "import time\n"
    "import ipywidgets as widgets\n"
    "import matplotlib.pyplot as plt\n"
    "from IPython.display import display\n"
    "renders = []\n"
    "def plot(x):\n"
    "    renders.append(x)\n"
    "    plt.figure(figsize=(3, 2)); plt.plot([1, 2, 3]); plt.title('interactive')\n"
    "ui = widgets.interactive(plot, x=widgets.IntSlider(description='x', max=100))\n"
    "display(ui)",
    "fig = plt.figure(figsize=(3, 2)); plt.plot([3, 1, 2]); time.sleep(2)",
    "from kernel_comm_ext import wait_for_msg\n"
    "button = widgets.Button(description='Continue')\n"
    "display(button)\n"
    "msg = await wait_for_msg(button.comm, timeout=120)\n"
    "print('clicked:', msg['content']['data']['content']['event'])",
]


@pytest.fixture
def notebook(lab_server: LabServer, chromium: Browser) -> t.Iterator[NotebookPage]:
    nb = new_notebook(cells=[new_code_cell(source) for source in CELLS])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, lab_server.root / "running_cell.ipynb")
    context = chromium.new_context(viewport={"width": 1280, "height": 1400})
    page = NotebookPage.open(context, lab_server, "running_cell.ipynb")
    try:
        yield page
    finally:
        page.close()
        context.close()
        lab_server.end_sessions()


def start_cell(nb: NotebookPage, index: int) -> None:
    """Run cell ``index`` without waiting for it to finish."""
    nb.page.evaluate(
        "(arg) => { const app = window.jupyterapp;"
        " const panel = app.shell.widgets('main').find((w) => w.context"
        " && w.context.path === arg.path);"
        " panel.content.activeCellIndex = arg.index; panel.content.deselectAll();"
        " app.shell.activateById(panel.id); app.commands.execute('notebook:run-cell'); }",
        {"path": nb.notebook, "index": index},
    )


def images(nb: NotebookPage, index: int) -> list[str]:
    return t.cast(
        list[str],
        nb.cell(index)
        .locator(".jp-OutputArea-output img")
        .evaluate_all("(imgs) => imgs.map((img) => img.getAttribute('src'))"),
    )


def test_interactive_and_a_waiting_cell(notebook: NotebookPage) -> None:
    nb = notebook
    nb.run_cell(0)
    nb.run_cell(1)
    kernel = nb.kernel()
    assert_ours(kernel)
    wait_until(lambda: kernel.eval("len(renders)"), 1, what="the first rendering")
    slider = Slider(nb.page, "x")
    renderings, cell_figures = [], []
    for move in range(1, MOVES + 1):
        start_cell(nb, 2)
        expect(nb.cell(2).locator(".jp-InputPrompt")).to_contain_text("*")
        nb.page.wait_for_timeout(300)  # the cell is drawing, then sleeping
        slider.press("ArrowRight")
        wait_until(lambda: kernel.eval("len(renders)"), move + 1, timeout=30, what="renderings")
        nb.wait_ready()
        expect(nb.cell(1).locator(".jp-OutputArea-output img")).to_have_count(1)
        renderings += images(nb, 1)
        cell_figures.append(len(images(nb, 2)))
    print(json.dumps({"distinct renderings": len(set(renderings)), "cell figures": cell_figures}))
    assert len(renderings) == MOVES
    assert len(set(renderings)) == 1
    assert cell_figures == [1] * MOVES

    start_cell(nb, 3)
    nb.page.get_by_role("button", name="Continue").click()
    expect(nb.cell(3)).to_contain_text("clicked: click")
    assert_ours(kernel)
