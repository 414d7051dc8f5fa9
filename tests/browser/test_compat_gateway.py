"""JupyterLab with its kernels behind a Jupyter Kernel Gateway, on kernel-comm-ext.

``jupyter kernelgateway`` runs on 127.0.0.1 with the auto-enabling kernelspec;
JupyterLab, started with ``--gateway-url``, starts its notebooks' kernels there,
so every comm message crosses two hops (browser -> JupyterLab -> gateway ->
kernel). The test frontend reaches the gateway's kernel through the connection
file the gateway wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import typing as t
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .compat import LOOP, check_loop, record_loop_on_ipykernel, screenshot
from .conftest import notebook_opener
from .lab import AUTOLOAD_KERNEL, START_TIMEOUT, LabServer, wait_until
from .test_lab_ipywidgets import both_directions
from .voila import free_port
from .widgets import Slider, assert_not_ours, assert_ours, in_our_manager

if t.TYPE_CHECKING:
    from playwright.sync_api import Browser

    from .conftest import OpenNotebook

pytestmark = [pytest.mark.browser, pytest.mark.compat]

# At the gateway: a kernel with kernel-comm-ext off.
PLAIN_KERNEL = "python3-plain"
LOOP_CODE = f"for i in range({LOOP}):\n    slider.value = i % 100"
FINAL = (LOOP - 1) % 100


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[tuple[str, Path]]:
    """A Kernel Gateway on 127.0.0.1: its URL and the folder of its kernels' connection files."""
    # LabServer's directory layout and kernelspec, used by the gateway process.
    layout = LabServer(tmp_path_factory.mktemp("gateway"))
    for path in layout.dirs.values():
        path.mkdir(parents=True)
    layout.write_autoload_kernelspec()
    # The gateway starts kernels with the environment its clients send, not its own, so
    # ipykernel's own comm layer gets a kernelspec of its own.
    plain = layout.dirs["JUPYTER_DATA_DIR"] / "kernels" / PLAIN_KERNEL
    plain.mkdir(parents=True)
    (plain / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "env": {"KERNEL_COMM_EXT_AUTOLOAD": "0"},
            }
        )
    )
    env = dict(os.environ)
    env.update({name: str(path) for name, path in layout.dirs.items()})
    env["KERNEL_COMM_EXT_AUTOLOAD"] = "0"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = layout.base / "gateway.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kernel_gateway",
                "--KernelGatewayApp.ip=127.0.0.1",
                f"--KernelGatewayApp.port={port}",
                # JupyterLab lists the kernels it runs there (refused by default).
                "--JupyterWebsocketPersonality.list_kernels=True",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=layout.base,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                urllib.request.urlopen(f"{url}/api/kernelspecs", timeout=5).close()
                break
            time.sleep(0.2)
        yield url, layout.dirs["JUPYTER_RUNTIME_DIR"]
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def gateway_lab(
    tmp_path_factory: pytest.TempPathFactory, gateway: tuple[str, Path]
) -> t.Iterator[LabServer]:
    """JupyterLab whose kernels are the gateway's."""
    url, kernel_runtime_dir = gateway
    server = LabServer(tmp_path_factory.mktemp("gateway-lab"), args=[f"--gateway-url={url}"])
    server.kernel_runtime_dir = kernel_runtime_dir
    try:
        server.start()
        # A first kernel of each kernelspec through both hops, before any page: twice, on a
        # busy machine, the page of a fresh gateway's first kernel lost its websocket at once
        # and never became ready (not seen in later runs without this; kept as it is cheap).
        for name in (AUTOLOAD_KERNEL, PLAIN_KERNEL):
            kernel = server.api("POST", "api/kernels", {"name": name})
            server.api("DELETE", f"api/kernels/{kernel['id']}")
        yield server
    finally:
        server.stop()


@pytest.fixture
def open_via_gateway(
    request: pytest.FixtureRequest, gateway_lab: LabServer, chromium: Browser
) -> t.Iterator[OpenNotebook]:
    with notebook_opener(request, gateway_lab, chromium, offline=True) as open_:
        yield open_


def test_gateway_widgets(open_via_gateway: OpenNotebook, screenshots: Path) -> None:
    nb = open_via_gateway("widgets_autoloaded.ipynb", kernel=AUTOLOAD_KERNEL)
    nb.run_all()
    kernel = nb.kernel()
    # The kernel is the gateway's, and the extension is active in it.
    assert Path(kernel.km.connection_file).parent == nb.server.kernel_runtime_dir
    assert_ours(kernel)
    expect(nb.cell(1)).to_contain_text("comm manager: KernelCommManager")
    assert in_our_manager(kernel, "slider")
    Slider(nb.page, "slider").expect_value(10)
    both_directions(nb, kernel, 42)

    kernel.run(LOOP_CODE)
    check_loop("gateway-ipywidgets", Slider(nb.page, "slider").readout.inner_text, str(FINAL))
    screenshot(nb.cell(2), screenshots / "compat-gateway.png")
    assert_ours(kernel)


def test_gateway_loop_on_ipykernel(open_via_gateway: OpenNotebook) -> None:
    nb = open_via_gateway("widgets_autoloaded.ipynb", kernel=PLAIN_KERNEL)
    nb.run_all()
    kernel = nb.kernel()
    assert_not_ours(kernel)
    slider = Slider(nb.page, "slider")
    slider.expect_value(10)
    kernel.run(LOOP_CODE)
    record_loop_on_ipykernel("gateway-ipywidgets", slider.readout.inner_text, str(FINAL))
    wait_until(lambda: kernel.eval("slider.value"), FINAL, what="slider.value in the kernel")
