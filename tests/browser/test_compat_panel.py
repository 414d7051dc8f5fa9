"""panel with a bokeh plot in JupyterLab on kernel-comm-ext (examples/compat_panel.ipynb).

panel reaches the page through pyviz_comms, which registers its targets on
``get_ipython().kernel.comm_manager`` and opens ``ipykernel.comm.Comm`` objects
itself instead of using the ``comm`` package's hooks.

``pn.extension(inline=True)`` inlines panel's JavaScript and the first render's
stylesheets, but components updated later still link their theme stylesheets
from panel's CDN. panel's setting for air-gapped machines, ``PANEL_CDN_ROOT``,
points those at a copy served here on 127.0.0.1 from panel's own wheel, in a
JupyterLab of this module's own.
"""

from __future__ import annotations

import functools
import http.server
import re
import tempfile
import threading
import typing as t
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .compat import LOOP, check_loop, record_loop_on_ipykernel, screenshot
from .conftest import notebook_opener
from .lab import AUTOLOAD_KERNEL, LabServer, NotebookPage, wait_until
from .widgets import assert_not_ours, assert_ours

if t.TYPE_CHECKING:
    from playwright.sync_api import Browser

    from .conftest import OpenNotebook

pytestmark = [pytest.mark.browser, pytest.mark.compat]

NOTEBOOK = "compat_panel.ipynb"
LOOP_CODE = f"for i in range({LOOP}):\n    status.object = f'update {{i}}'"
FINAL = f"update {LOOP - 1}"
# The titles of the bokeh figures in the page's bokeh documents (bokeh draws them on a canvas).
TITLES = """() => (window.Bokeh ? window.Bokeh.documents : []).flatMap(
  (doc) => [...doc.all_models].filter((m) => m.type === "Title").map((m) => m.text))"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: t.Any) -> None:
        pass


@pytest.fixture(scope="module")
def panel_cdn() -> t.Iterator[str]:
    """panel's dist folder (from its wheel) served on 127.0.0.1 as its CDN lays it out."""
    from panel.io.resources import DIST_DIR, JS_VERSION

    with tempfile.TemporaryDirectory() as mirror:
        (Path(mirror) / "panel" / JS_VERSION).mkdir(parents=True)
        (Path(mirror) / "panel" / JS_VERSION / "dist").symlink_to(DIST_DIR)
        handler = functools.partial(_QuietHandler, directory=mirror)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/panel/"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


@pytest.fixture(scope="module")
def panel_lab(tmp_path_factory: pytest.TempPathFactory, panel_cdn: str) -> t.Iterator[LabServer]:
    """JupyterLab whose kernels take panel's stylesheets from ``panel_cdn``."""
    server = LabServer(
        tmp_path_factory.mktemp("panel-lab"),
        env={"KERNEL_COMM_EXT_AUTOLOAD": "0", "PANEL_CDN_ROOT": panel_cdn},
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def open_compat(
    request: pytest.FixtureRequest, panel_lab: LabServer, chromium: Browser
) -> t.Iterator[OpenNotebook]:
    """Open example notebooks in this module's JupyterLab, offline."""
    with notebook_opener(request, panel_lab, chromium, offline=True) as open_:
        yield open_


def open_layout(open_compat: OpenNotebook, kernel_name: str | None) -> NotebookPage:
    nb = open_compat(NOTEBOOK, kernel=kernel_name)
    nb.run_all()
    expect(nb.page.locator(".bk-slider-title")).to_have_text("frequency: 3")
    return nb


def status_text(nb: NotebookPage) -> str:
    return nb.page.locator("pre").filter(has_text=re.compile("update")).first.inner_text()


def test_panel_slider_reruns_bound_function(open_compat: OpenNotebook, screenshots: Path) -> None:
    nb = open_layout(open_compat, AUTOLOAD_KERNEL)
    kernel = nb.kernel()
    assert_ours(kernel)
    # pyviz_comms opens ipykernel.comm.Comm objects itself; they register with our manager,
    # and its targets sit in our manager's targets dict.
    assert kernel.eval(
        "sorted({type(c).__module__ + '.' + type(c).__name__"
        " for c in get_ipython().kernel.comm_manager.comms.values()})"
    ) == ["ipykernel.comm.comm.Comm", "kernel_comm_ext.kernel.comm.KernelComm"]
    assert kernel.eval("len(get_ipython().kernel.comm_manager.targets) > 2")
    assert kernel.eval("calls") == [3]
    wait_until(lambda: "sin(3 x)" in nb.page.evaluate(TITLES), True, what="first figure")

    # Page -> kernel -> page: the slider reruns plot(), and the new figure shows.
    nb.page.locator(".noUi-handle").first.press("ArrowRight")
    expect(nb.page.locator(".bk-slider-title")).to_have_text("frequency: 4")
    wait_until(lambda: kernel.eval("(slider.value, calls[-1])"), (4, 4), what="kernel side")
    wait_until(lambda: "sin(4 x)" in nb.page.evaluate(TITLES), True, what="redrawn figure")
    expect(
        nb.page.get_by_text(re.compile(r"^sin\(4 x\) peaks first at x = [\d.]+$"))
    ).to_be_visible()

    # Kernel -> page.
    kernel.run("slider.value = 7")
    expect(nb.page.locator(".bk-slider-title")).to_have_text("frequency: 7")
    wait_until(lambda: "sin(7 x)" in nb.page.evaluate(TITLES), True, what="figure for 7")
    screenshot(nb.cell(3).locator(".jp-OutputArea"), screenshots / "compat-panel.png")

    # pyviz_comms sends through ipykernel's own Comm class, which kernel-comm-ext routes
    # through its sender while loaded: the loop keeps within Jupyter Server's rate limit.
    kernel.run(LOOP_CODE)
    check_loop("panel", lambda: status_text(nb), FINAL)
    assert_ours(kernel)


def test_panel_loop_on_ipykernel(open_compat: OpenNotebook) -> None:
    nb = open_layout(open_compat, None)
    assert_not_ours(nb.kernel())
    nb.kernel().run(LOOP_CODE)
    record_loop_on_ipykernel("panel", lambda: status_text(nb), FINAL)
