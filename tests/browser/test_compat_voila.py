"""Voila dashboards on kernel-comm-ext (examples/compat_voila.ipynb)."""

from __future__ import annotations

import re
import typing as t
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import expect

from ..frontend import Frontend, KernelError
from .compat import LOOP, check_loop, record_loop_on_ipykernel, screenshot
from .conftest import EXAMPLES
from .lab import AUTOLOAD_KERNEL, PAGE_TIMEOUT_MS, wait_until
from .voila import VoilaServer
from .widgets import Slider, assert_not_ours, assert_ours, text_box

if t.TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.compat]

NOTEBOOK = "compat_voila.ipynb"
BIG_LOOP = 20_000
# Voila's page templates link Font Awesome from a CDN (icons only); the test browser refuses
# those requests, and any other address off this machine fails the test.
TEMPLATE_CDN = "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@"
# The same dashboard twice: on an auto-enabled kernel and on ipykernel's own comm layer.
DASHBOARDS = {"ours.ipynb": AUTOLOAD_KERNEL, "ipykernel.ipynb": "python3"}


@pytest.fixture(scope="module")
def voila(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[VoilaServer]:
    server = VoilaServer(tmp_path_factory.mktemp("voila"), env={"KERNEL_COMM_EXT_AUTOLOAD": "0"})
    try:
        server.start()
        for name, kernel in DASHBOARDS.items():
            nb = nbformat.read(EXAMPLES / NOTEBOOK, as_version=4)
            nb.metadata.kernelspec.name = kernel
            nbformat.write(nb, server.root / name)
        yield server
    finally:
        server.stop()


@pytest.fixture
def dashboard(
    voila: VoilaServer, chromium: Browser
) -> t.Iterator[t.Callable[[str], tuple[Page, Frontend]]]:
    """Open a dashboard; return its page and a test frontend on the kernel Voila started."""
    context = chromium.new_context(viewport={"width": 1000, "height": 700})
    requested: list[str] = []
    context.on("request", lambda r: requested.append(r.url))
    context.route(re.compile(r"^(?!http://127\.0\.0\.1:)"), lambda route: route.abort())
    kernels: list[Frontend] = []

    def open_(name: str) -> tuple[Page, Frontend]:
        before = voila.connection_files()
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.goto(voila.page_url(name))
        Slider(page, "slider").expect_value(10)
        (connection_file,) = voila.connection_files() - before
        kernel = voila.connect_file(connection_file)
        kernels.append(kernel)
        return page, kernel

    try:
        yield open_
    finally:
        for kernel in kernels:
            kernel.shutdown()  # the test frontend only: Voila ends its kernels when it stops
        context.close()
    away = sorted(
        {
            url
            for url in requested
            if not url.startswith(("http://127.0.0.1:", "data:", TEMPLATE_CDN))
        }
    )
    assert not away, f"the dashboard asked for addresses off this machine: {away}"


def test_voila_dashboard(
    dashboard: t.Callable[[str], tuple[Page, Frontend]], screenshots: Path
) -> None:
    page, kernel = dashboard("ours.ipynb")
    assert_ours(kernel)
    slider, count = Slider(page, "slider"), text_box(page, "count")
    # Outputs show, code does not.
    expect(page.get_by_text("comm manager: KernelCommManager")).to_be_visible()
    expect(page.get_by_text("import ipywidgets")).to_have_count(0)

    # Page -> kernel.
    slider.press("ArrowRight", times=2)
    slider.expect_value(12)
    wait_until(lambda: kernel.eval("slider.value"), 12, what="slider.value in the kernel")
    # Kernel -> page.
    kernel.run("slider.value = 42")
    slider.expect_value(42)
    # A click runs the callback in the kernel, whose print shows in the Output.
    page.get_by_role("button", name="Click me").click()
    expect(page.locator(".widget-output")).to_contain_text("click 1: slider at 42")
    assert kernel.eval("clicks") == [42]

    # 2,000 changes from a cell, then 20,000 from a button callback.
    kernel.run(f"for i in range({LOOP}):\n    count.value = i")
    check_loop("voila", count.input_value, str(LOOP - 1))
    page.get_by_role("button", name="Run loop").click()
    wait_until(lambda: kernel.eval("count.value"), BIG_LOOP - 1, timeout=60, what="kernel count")
    check_loop("voila-20000-from-callback", count.input_value, str(BIG_LOOP - 1))
    screenshot(page.locator(".widget-vbox").first, screenshots / "compat-voila.png")
    assert_ours(kernel)


def test_voila_loops_on_ipykernel(dashboard: t.Callable[[str], tuple[Page, Frontend]]) -> None:
    page, kernel = dashboard("ipykernel.ipynb")
    assert_not_ours(kernel)
    count = text_box(page, "count")
    # This layer's IOPub socket may drop the cell's idle status: its end is its reply.
    kernel.run_until_reply(f"for i in range({LOOP}):\n    count.value = i", timeout=120)
    record_loop_on_ipykernel("voila", count.input_value, str(LOOP - 1))
    page.get_by_role("button", name="Run loop").click()
    record_loop_on_ipykernel("voila-20000-from-callback", count.input_value, str(BIG_LOOP - 1))
    try:
        done = kernel.eval("count.value", timeout=5) == BIG_LOOP - 1
    except KernelError:
        done = False
    print(f"ipykernel: the 20,000-update callback {'has ended' if done else 'is still running'}")
