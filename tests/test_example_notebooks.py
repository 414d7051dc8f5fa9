"""The notebooks in examples/ run top to bottom without an error, headless, with nbclient.

Each prints the class of the comm manager widget libraries get; the
extension must be the one in use where the notebook says it loaded it.
"""

from __future__ import annotations

import importlib.util
import os
import typing as t
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(path.name for path in EXAMPLES.glob("*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# The "comm manager: ..." lines each notebook prints, in order.
EXPECTED_MANAGERS = {
    "anywidget_counter.ipynb": ["KernelCommManager"],
    "callback_errors.ipynb": ["KernelCommManager"],
    "compat_bqplot.ipynb": ["KernelCommManager"],
    "compat_ipycanvas.ipynb": ["KernelCommManager"],
    "compat_ipydatagrid.ipynb": ["KernelCommManager"],
    "compat_ipyleaflet.ipynb": ["KernelCommManager"],
    "compat_ipympl.ipynb": ["KernelCommManager"],
    "compat_panel.ipynb": ["KernelCommManager"],
    "compat_plotly.ipynb": ["KernelCommManager"],
    "compat_voila.ipynb": ["KernelCommManager"],
    "widgets.ipynb": ["KernelCommManager"],
    "widgets_autoloaded.ipynb": ["KernelCommManager"],
    "widgets_before_load.ipynb": ["CommManager", "KernelCommManager", "CommManager"],
}
# Run on a kernel that auto-enables the extension (the test kernels have it off).
AUTOLOADED = {"widgets_autoloaded.ipynb"} | {
    name for name in NOTEBOOKS if name.startswith("compat_")
}
# The library each compat notebook needs (the compat extra; .ci/oldest installs only test's).
REQUIRES = {
    "compat_bqplot.ipynb": "bqplot",
    "compat_ipycanvas.ipynb": "ipycanvas",
    "compat_ipydatagrid.ipynb": "ipydatagrid",
    "compat_ipyleaflet.ipynb": "ipyleaflet",
    "compat_ipympl.ipynb": "ipympl",
    "compat_panel.ipynb": "panel",
    "compat_plotly.ipynb": "plotly",
    "compat_voila.ipynb": "ipywidgets",
}
# What each notebook displays, when not an ipywidgets view: panel's output is its own mime type.
VIEWS = {"compat_panel.ipynb": "application/vnd.holoviews_exec.v0+json"}


def outputs(nb: t.Any, output_type: str) -> list[t.Any]:
    return [
        o
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.outputs
        if o.output_type == output_type
    ]


def test_every_notebook_has_expectations() -> None:
    assert sorted(EXPECTED_MANAGERS) == NOTEBOOKS
    assert {n for n in NOTEBOOKS if n.startswith("compat_")} == set(REQUIRES)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_example_notebook_runs(name: str, tmp_path: Path) -> None:
    if name in REQUIRES and importlib.util.find_spec(REQUIRES[name]) is None:
        pytest.skip(f"{REQUIRES[name]} is not installed (the compat extra)")
    autoload = name in AUTOLOADED
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    nbformat.validate(nb)
    client = NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env={**os.environ, "KERNEL_COMM_EXT_AUTOLOAD": "1" if autoload else "0"})

    stdout = "".join(o.text for o in outputs(nb, "stream") if o.name == "stdout")
    managers = [
        line.split(":", 1)[1].strip()
        for line in stdout.splitlines()
        if line.startswith("comm manager:")
    ]
    assert managers == EXPECTED_MANAGERS[name]
    assert not outputs(nb, "error")
    shown = outputs(nb, "display_data") + outputs(nb, "execute_result")
    view = VIEWS.get(name, WIDGET_VIEW)
    assert any(view in o.get("data", {}) for o in shown), "no widget was displayed"
