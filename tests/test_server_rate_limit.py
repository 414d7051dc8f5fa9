"""Widget state survives Jupyter Server's IOPub rate limit.

A real ``jupyter server`` with its default limits (1,000 msg/s over 3 s)
forwards the kernel's messages to a websocket client, as to JupyterLab. With
the extension, 20,000 slider updates in one cell end on the last value, and
8,000 custom messages (well past the 3,000 the server lets through in its window)
all arrive, in order (they wait in the kernel). ipykernel's own
comm layer loses messages in both loops (figures printed; run with ``-s``).
"""

from __future__ import annotations

import time
import typing as t

from .server_client import ServerKernel

SLIDER = """
import comm, ipywidgets
from IPython.display import display
s = ipywidgets.IntSlider(min=-1, value=-1, max=10**6)
display(s)
"""
W6 = "for i in range(20000): s.value = i"
CUSTOM = "import comm\nc = comm.create_comm(target_name='custom')"
CUSTOM_MESSAGES = 8000
CUSTOM_LOOP = f"for i in range({CUSTOM_MESSAGES}): c.send({{'i': i}})"
RATE_EXCEEDED = "IOPub message rate exceeded"


def _comm_id(kernel: ServerKernel, since: int) -> str:
    opened = kernel.messages(msg_type="comm_open", since=since)
    return t.cast(str, opened[-1]["content"]["comm_id"])


def _slider_values(kernel: ServerKernel, slider: str, since: int) -> list[int]:
    return [
        m["content"]["data"]["state"]["value"]
        for m in kernel.messages(msg_type="comm_msg", comm_id=slider, since=since)
        if m["content"]["data"].get("method") == "update"
        and "value" in m["content"]["data"]["state"]
    ]


def _rate_warnings(kernel: ServerKernel, since: int) -> int:
    return sum(
        RATE_EXCEEDED in m["content"]["text"]
        for m in kernel.messages("iopub", "stream", since=since)
    )


def _run_lossy(kernel: ServerKernel, code: str) -> float:
    """Run ``code`` where the idle status may be lost; wait for its reply and the last messages."""
    start = time.monotonic()
    kernel.reply_to(kernel.send_execute(code), timeout=120)
    took = time.monotonic() - start
    kernel.wait_quiet(2.0, timeout=60)
    return took


def _figures(label: str, **figures: t.Any) -> None:
    print(f"\n[{label}] " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def test_slider_ends_on_the_last_value_with_the_extension(server_kernel: ServerKernel) -> None:
    kernel = server_kernel
    kernel.execute("%load_ext kernel_comm_ext")
    mark = kernel.mark()
    kernel.execute(SLIDER)
    slider = _comm_id(kernel, mark)
    mark = kernel.mark()
    start = time.monotonic()
    kernel.execute(W6, timeout=120)
    took = time.monotonic() - start

    values = _slider_values(kernel, slider, mark)
    stats = kernel.execute(
        "st = get_ipython().kernel.comm_manager.delivery_stats()\nprint(st.sent, st.coalesced)"
    ).stdout.split()
    _figures(
        "extension W6",
        received=len(values),
        last=values[-1],
        seconds=round(took, 2),
        sent=stats[0],
        coalesced=stats[1],
    )
    assert values[-1] == 19999
    assert len(values) < 10000
    assert values == sorted(values)
    assert _rate_warnings(kernel, mark) == 0


def test_custom_messages_all_arrive_in_order(server_kernel: ServerKernel) -> None:
    kernel = server_kernel
    kernel.execute("%load_ext kernel_comm_ext")
    mark = kernel.mark()
    kernel.execute(CUSTOM)
    custom = _comm_id(kernel, mark)
    mark = kernel.mark()
    start = time.monotonic()
    kernel.execute(CUSTOM_LOOP, timeout=120)
    took = time.monotonic() - start

    received = [
        m["content"]["data"]
        for m in kernel.messages(msg_type="comm_msg", comm_id=custom, since=mark)
    ]
    _figures("extension custom", received=len(received), seconds=round(took, 2))
    assert received == [{"i": i} for i in range(CUSTOM_MESSAGES)]
    assert _rate_warnings(kernel, mark) == 0


def test_default_comm_layer_loses_slider_updates(server_kernel: ServerKernel) -> None:
    kernel = server_kernel
    mark = kernel.mark()
    kernel.execute(SLIDER)
    slider = _comm_id(kernel, mark)
    mark = kernel.mark()
    took = _run_lossy(kernel, W6)

    values = _slider_values(kernel, slider, mark)
    _figures(
        "default W6",
        received=len(values),
        last=values[-1] if values else None,
        seconds=round(took, 2),
        rate_warnings=_rate_warnings(kernel, mark),
    )
    assert len(values) < 20000


def test_default_comm_layer_loses_custom_messages(server_kernel: ServerKernel) -> None:
    kernel = server_kernel
    mark = kernel.mark()
    kernel.execute(CUSTOM)
    custom = _comm_id(kernel, mark)
    mark = kernel.mark()
    took = _run_lossy(kernel, CUSTOM_LOOP)

    received = kernel.messages(msg_type="comm_msg", comm_id=custom, since=mark)
    _figures(
        "default custom",
        received=len(received),
        seconds=round(took, 2),
        rate_warnings=_rate_warnings(kernel, mark),
    )
    assert len(received) < CUSTOM_MESSAGES
