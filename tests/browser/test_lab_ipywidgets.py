"""ipywidgets in JupyterLab in a real browser, on kernel-comm-ext (notebooks from examples/)."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ..frontend import Frontend
from .lab import AUTOLOAD_KERNEL, NotebookPage, wait_until
from .widgets import Slider, assert_not_ours, assert_ours, in_our_manager, text_box

if t.TYPE_CHECKING:
    from .conftest import OpenNotebook

pytestmark = pytest.mark.browser


def page_moves_kernel(nb: NotebookPage, kernel: Frontend) -> int:
    """One ArrowRight on the focused slider handle reaches ``slider.value`` in the kernel."""
    before = kernel.eval("slider.value")
    Slider(nb.page, "slider").press("ArrowRight")
    Slider(nb.page, "slider").expect_value(before + 1)
    wait_until(lambda: kernel.eval("slider.value"), before + 1, what="slider.value in the kernel")
    return int(before + 1)


def kernel_moves_page(nb: NotebookPage, kernel: Frontend, value: int) -> None:
    """``slider.value = value`` in the kernel moves the page's slider."""
    kernel.run(f"slider.value = {value}")
    Slider(nb.page, "slider").expect_value(value)


def click_runs_callback(nb: NotebookPage, kernel: Frontend, value: int) -> None:
    """A click on the button runs its on_click in the kernel, and its output shows in the page."""
    count = len(kernel.eval("clicks")) + 1
    nb.page.get_by_role("button", name="Click me").click()
    expect(nb.page.locator(".widget-output")).to_contain_text(f"click {count}: slider at {value}")
    assert kernel.eval("clicks")[-1] == value


def both_directions(nb: NotebookPage, kernel: Frontend, value: int) -> None:
    page_moves_kernel(nb, kernel)
    kernel_moves_page(nb, kernel, value)
    click_runs_callback(nb, kernel, value)


def test_widgets_on_the_extension(open_notebook: OpenNotebook, screenshots: Path) -> None:
    nb = open_notebook("widgets.ipynb")
    nb.run_all()
    kernel = nb.kernel()
    assert_ours(kernel)
    expect(nb.cell(2)).to_contain_text("comm manager: KernelCommManager")
    assert kernel.eval("type(slider.comm).__name__") == "KernelComm"
    assert in_our_manager(kernel, "slider")
    slider, mirror = Slider(nb.page, "slider"), text_box(nb.page, "jslinked")
    slider.expect_value(10)
    expect(mirror).to_have_value("10")

    # Page -> kernel: the keyboard moves the slider; jslink moves the text box in the page,
    # and both models reach the kernel.
    slider.press("ArrowRight", times=3)
    slider.expect_value(13)
    expect(mirror).to_have_value("13")
    wait_until(lambda: kernel.eval("(slider.value, mirror.value)"), (13, 13), what="kernel values")

    # Kernel -> page, and on through the page's link back to the kernel.
    kernel.run("slider.value = 42")
    slider.expect_value(42)
    expect(mirror).to_have_value("42")
    wait_until(lambda: kernel.eval("mirror.value"), 42, what="mirror.value in the kernel")

    click_runs_callback(nb, kernel, 42)
    nb.screenshot(screenshots / "widgets-on-kernel-comm-ext.png")
    assert_ours(kernel)


def test_widgets_on_the_auto_enabled_extension(open_notebook: OpenNotebook) -> None:
    nb = open_notebook("widgets_autoloaded.ipynb", kernel=AUTOLOAD_KERNEL)
    nb.run_all()
    kernel = nb.kernel()
    assert_ours(kernel)
    expect(nb.cell(1)).to_contain_text("comm manager: KernelCommManager")
    assert kernel.eval("type(slider.comm).__name__") == "KernelComm"
    assert in_our_manager(kernel, "slider")
    both_directions(nb, kernel, 42)
    assert_ours(kernel)


def test_widgets_shown_before_load_and_after_unload(open_notebook: OpenNotebook) -> None:
    nb = open_notebook("widgets_before_load.ipynb")
    nb.run_cell(1)
    kernel = nb.kernel()
    assert_not_ours(kernel)
    both_directions(nb, kernel, 21)

    nb.run_cell(2)
    expect(nb.cell(2)).to_contain_text("comm manager: KernelCommManager")
    assert_ours(kernel)
    assert in_our_manager(kernel, "slider")
    both_directions(nb, kernel, 32)

    nb.run_cell(3)
    expect(nb.cell(3).locator(".jp-OutputArea-output")).not_to_contain_text("KernelCommManager")
    assert_not_ours(kernel)
    both_directions(nb, kernel, 43)


def test_page_reload_renders_widgets_from_the_kernel(open_notebook: OpenNotebook) -> None:
    nb = open_notebook("widgets.ipynb")
    nb.run_all()
    nb.save()
    kernel = nb.kernel()
    assert_ours(kernel)
    # A value the saved notebook cannot know: after the reload it can only come from the kernel.
    kernel.run("slider.value = 57")
    since = kernel.mark()

    nb.reload()
    Slider(nb.page, "slider").expect_value(57)
    expect(text_box(nb.page, "jslinked")).to_have_value("57")
    # ipywidgets asked the kernel for every widget's state on its control comm ...
    states = kernel.wait_for(
        "comm_msg",
        since=since,
        predicate=lambda m: m["content"]["data"].get("method") == "update_states",
    )[0]["content"]["data"]["states"]
    assert kernel.eval("slider.model_id") in states
    # ... and comm_info lists the widgets' comms from our manager.
    assert kernel.eval("slider.model_id") in kernel.comm_info("jupyter.widget")
    assert_ours(kernel)

    value = page_moves_kernel(nb, kernel)
    assert value == 58
    kernel_moves_page(nb, kernel, 7)
    click_runs_callback(nb, kernel, 7)
