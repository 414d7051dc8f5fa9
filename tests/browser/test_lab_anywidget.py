"""anywidget in JupyterLab in a real browser, on kernel-comm-ext (examples/anywidget_counter.ipynb).

``Counter`` is an ``anywidget.AnyWidget`` (its comm made by ipywidgets through
the ``comm`` package); ``Tally`` is an ``anywidget.experimental`` dataclass,
whose comm anywidget opens with ``comm.create_comm`` itself.
"""

from __future__ import annotations

import functools
import typing as t

import pytest
from playwright.sync_api import expect

from .lab import wait_until
from .widgets import assert_ours

if t.TYPE_CHECKING:
    from .conftest import OpenNotebook

pytestmark = pytest.mark.browser

COMM_OF = {"counter": "counter.comm", "tally": "tally._repr_mimebundle_._comm"}


def test_anywidget_counters_round_trip(open_notebook: OpenNotebook) -> None:
    nb = open_notebook("anywidget_counter.ipynb")
    nb.run_all()
    kernel = nb.kernel()
    assert_ours(kernel)
    for name, comm in COMM_OF.items():
        assert kernel.eval(f"type({comm}).__name__") == "KernelComm", name
        button = nb.page.locator(".counter-button", has_text=f"{name}:")
        expect(button).to_have_text(f"{name}: 0")

        button.click()
        button.click()
        expect(button).to_have_text(f"{name}: 2")
        value_in_kernel = functools.partial(kernel.eval, f"{name}.value")
        wait_until(value_in_kernel, 2, what=f"{name}.value in the kernel")

        kernel.run(f"{name}.value = 40")
        expect(button).to_have_text(f"{name}: 40")
        button.click()
        wait_until(value_in_kernel, 41, what=f"{name}.value in the kernel")
    assert_ours(kernel)
