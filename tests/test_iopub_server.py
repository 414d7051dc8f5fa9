"""Lossless IOPub through a real Jupyter Server: the idle status always reaches the page.

The websocket client connects as JupyterLab does (tests/server_client.py). The
server reads the kernel's IOPub in Python and forwards it; a cell sending
20,000 comm messages outpaces it, and ipykernel's default socket then drops
messages, among them, often, the idle status that ends the cell.
"""

from __future__ import annotations

import pytest

from .server_client import ServerError, ServerKernel

RUNS = 10
# With the rate budget the flood would wait in the kernel at 500/s: off, so it floods IOPub.
FLOOD = """
import comm
get_ipython().kernel.comm_manager.rate_budget = 0
flood = comm.create_comm(target_name="flood")
for i in range(20_000):
    flood.send({"i": i})
"""


def _idle_arrives(kernel: ServerKernel, idle_timeout: float) -> bool:
    """Run the flood; whether its idle status reached the client within ``idle_timeout`` s."""
    since = kernel.mark()
    msg_id = kernel.send_execute(FLOOD)
    assert kernel.reply_to(msg_id, timeout=120)["content"]["status"] == "ok"
    try:
        kernel.wait_idle(msg_id, since=since, timeout=idle_timeout)
    except ServerError:
        return False
    return True


def test_idle_status_reaches_the_websocket_client_after_every_flood(
    server_kernel: ServerKernel, capsys: pytest.CaptureFixture[str]
) -> None:
    server_kernel.execute("%load_ext kernel_comm_ext")
    arrived = [_idle_arrives(server_kernel, idle_timeout=60) for _ in range(RUNS)]
    with capsys.disabled():
        print(
            f"\n[lossless IOPub, Jupyter Server] idle status reached the client in"
            f" {sum(arrived)} of {RUNS} runs of 20,000 comm messages"
        )
    assert all(arrived)
    assert server_kernel.model()["execution_state"] == "idle"


SLIDER = """
import ipywidgets
from IPython.display import display
s = ipywidgets.IntSlider(min=-1, value=-1, max=10**6)
display(s)
"""


def test_slider_ends_on_the_final_value_with_lossless_iopub(server_kernel: ServerKernel) -> None:
    """20,000 slider updates: the client holds the last (with coalescing)."""
    server_kernel.execute("%load_ext kernel_comm_ext")
    since = server_kernel.mark()
    server_kernel.execute(SLIDER)
    slider = server_kernel.messages(msg_type="comm_open", since=since)[-1]["content"]["comm_id"]
    since = server_kernel.mark()
    server_kernel.execute("for i in range(20_000): s.value = i", timeout=120)
    values = [
        m["content"]["data"]["state"]["value"]
        for m in server_kernel.messages(msg_type="comm_msg", comm_id=slider, since=since)
        if "value" in m["content"]["data"].get("state", {})
    ]
    assert values[-1] == 19_999
    assert values == sorted(values)
    stats = server_kernel.execute(
        "print(get_ipython().kernel.comm_manager.iopub_stats().state)"
    ).stdout
    assert stats == "lossless\n"
