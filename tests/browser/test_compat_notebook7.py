"""Notebook 7 (``jupyter notebook``): the ipywidgets notebook, checked as in JupyterLab."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .compat import LOOP, check_loop, record_loop_on_ipykernel, screenshot
from .conftest import notebook_opener
from .lab import AUTOLOAD_KERNEL, LabServer, wait_until
from .test_lab_ipywidgets import click_runs_callback
from .widgets import Slider, assert_not_ours, assert_ours, in_our_manager, text_box

if t.TYPE_CHECKING:
    from playwright.sync_api import Browser

    from .conftest import OpenNotebook

pytestmark = [pytest.mark.browser, pytest.mark.compat]

# The loop's last value: the slider runs 0..100.
LOOP_CODE = f"for i in range({LOOP}):\n    slider.value = i % 100"
FINAL = (LOOP - 1) % 100


@pytest.fixture
def open_in_notebook7(
    request: pytest.FixtureRequest, notebook_server: LabServer, chromium: Browser
) -> t.Iterator[OpenNotebook]:
    """Open a copy of an example notebook in Notebook 7; everything is closed after the test."""
    with notebook_opener(request, notebook_server, chromium) as open_:
        yield open_


def click_track(slider: Slider, fraction: float) -> int:
    """Click the slider's track ``fraction`` of the way along; return the value it shows."""
    box = slider.root.locator(".noUi-target").bounding_box()
    assert box is not None
    slider.root.page.mouse.click(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)
    value = int(float(slider.handle.get_attribute("aria-valuenow") or "nan"))
    slider.expect_value(value)
    return value


def test_notebook7_widgets(open_in_notebook7: OpenNotebook, screenshots: Path) -> None:
    nb = open_in_notebook7("widgets_autoloaded.ipynb", kernel=AUTOLOAD_KERNEL)
    nb.run_all()
    kernel = nb.kernel()
    assert_ours(kernel)
    expect(nb.cell(1)).to_contain_text("comm manager: KernelCommManager")
    assert in_our_manager(kernel, "slider")
    slider, mirror = Slider(nb.page, "slider"), text_box(nb.page, "jslinked")
    slider.expect_value(10)
    expect(mirror).to_have_value("10")

    # Page -> kernel, with the page's jslink in between. Notebook 7's own key handler takes
    # the arrow keys before the slider sees them, so the mouse moves it: a click on its track.
    value = click_track(slider, 0.3)
    assert value != 10
    expect(mirror).to_have_value(str(value))
    wait_until(
        lambda: kernel.eval("(slider.value, mirror.value)"), (value, value), what="kernel values"
    )

    # Kernel -> page, and on through the page's link back to the kernel.
    kernel.run("slider.value = 42")
    slider.expect_value(42)
    expect(mirror).to_have_value("42")
    wait_until(lambda: kernel.eval("mirror.value"), 42, what="mirror.value in the kernel")
    click_runs_callback(nb, kernel, 42)

    # A loop of changes from one cell: the page ends on the kernel's last value.
    kernel.run(LOOP_CODE)
    check_loop("notebook7-ipywidgets", slider.readout.inner_text, str(FINAL))
    slider.expect_value(FINAL)
    expect(mirror).to_have_value(str(FINAL))
    wait_until(lambda: kernel.eval("mirror.value"), FINAL, what="mirror.value in the kernel")
    screenshot(nb.cell(2), screenshots / "compat-notebook7.png")
    assert_ours(kernel)


def test_notebook7_loop_on_ipykernel(open_in_notebook7: OpenNotebook) -> None:
    nb = open_in_notebook7("widgets_autoloaded.ipynb")
    nb.run_all()
    kernel = nb.kernel()
    assert_not_ours(kernel)
    slider = Slider(nb.page, "slider")
    slider.expect_value(10)
    kernel.run(LOOP_CODE)
    record_loop_on_ipykernel("notebook7-ipywidgets", slider.readout.inner_text, str(FINAL))
