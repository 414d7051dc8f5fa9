"""Comms made as ipykernel's own ``Comm`` class send through kernel-comm-ext while it is loaded.

pyviz_comms (panel, holoviews, bokeh in notebooks) opens ``ipykernel.comm.Comm``
objects itself instead of calling ``comm.create_comm``. Real kernels over
ZMQ (tests/frontend.py), and one through a real ``jupyter server``: their
messages keep within the rate budget, in order, their replies still reach
them, the garbage collector's closes of them cannot deadlock the sender, and
unloading gives ipykernel its methods back.
"""

from __future__ import annotations

import importlib.util

import pytest

from .frontend import Frontend
from .helpers import collection_storm
from .server_client import ServerKernel

LEGACY = """
import gc, warnings, dataclasses
import ipykernel.comm
manager = get_ipython().kernel.comm_manager

def legacy_comm(target_name='legacy'):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        return ipykernel.comm.Comm(target_name=target_name, data={})
"""
SENDS = 1000
# The oldest leg of the version matrix has neither.
needs_server_and_pyviz_comms = pytest.mark.skipif(
    not all(importlib.util.find_spec(name) for name in ("jupyter_server", "pyviz_comms")),
    reason="needs jupyter_server and pyviz_comms",
)


def _sent_values(fe: Frontend, comm_id: str, since: int) -> list[int]:
    return [m["content"]["data"]["i"] for m in fe.iopub("comm_msg", comm_id=comm_id, since=since)]


def test_messages_of_ipykernels_comm_class_keep_within_the_budget(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    fe.run("%config KernelCommManager.rate_budget = 200")
    fe.run(LEGACY + "c = legacy_comm()")
    comm_id = fe.eval("c.comm_id")
    assert fe.eval("type(c).__module__") == "ipykernel.comm.comm"
    # (ipykernel 6's Comm opens twice, under two ids: only the second is c.comm_id.)
    mark = fe.mark()
    fe.execute(f"for i in range({SENDS}): c.send({{'i': i}})", timeout=60)
    assert _sent_values(fe, comm_id, mark) == list(range(SENDS))
    # They went through the sender: most of them waited for the budget.
    per_comm = fe.eval(
        "[dataclasses.asdict(d) for d in manager.delivery_stats().comms if d.comm_id == c.comm_id]"
    )
    assert per_comm
    assert per_comm[0]["waited"] > SENDS // 2


def test_replies_reach_a_comm_of_ipykernels_class(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    fe.run(
        LEGACY
        + "c = legacy_comm()\n"
        + "c.on_msg(lambda msg: c.send({'echo': msg['content']['data']['n']}))"
    )
    comm_id = fe.eval("c.comm_id")
    mark = fe.mark()
    request = fe.send_comm(comm_id, {"n": 7})
    (echo,) = fe.wait_for("comm_msg", comm_id=comm_id, since=mark)
    assert echo["content"]["data"] == {"echo": 7}
    assert echo["parent_header"]["msg_id"] == request
    fe.run("c.close()")
    assert fe.wait_for("comm_close", comm_id=comm_id, since=mark)
    assert fe.eval("c.comm_id in manager.comms") is False


def test_collected_comms_of_ipykernels_class_close_without_deadlock(ext_kernel: Frontend) -> None:
    """Their finalizer hands the close to the sender, even inside the sender's locks."""
    fe = ext_kernel
    fe.run("%config KernelCommManager.rate_budget = 50")
    fe.run(
        LEGACY
        + "import ipywidgets\n"
        + "from ipykernel.comm.comm import BaseComm\n"
        + "s = ipywidgets.IntSlider(max=10**6)\n"
    )
    mark = fe.mark()
    # The class ipykernel's own comm.create_comm makes, behind Comm.
    fe.execute(
        collection_storm("BaseComm(target_name='doomed')") + "manager.sender.flush()",
        timeout=60,
    )
    doomed = set(fe.eval("doomed"))
    assert len(doomed) == 300
    fe.wait_for(
        "comm_close",
        since=mark,
        predicate=lambda m: m["content"]["comm_id"] in doomed,
        count=300,
        timeout=10,
    )
    assert fe.eval("manager.delivery_stats().errors") == 0
    assert fe.kernel_info()["status"] == "ok"


def test_unloading_gives_ipykernels_comm_class_its_methods_back(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    fe.run(LEGACY + "from ipykernel.comm.comm import BaseComm\nc = legacy_comm()")
    routed = "(BaseComm.publish_msg.__module__, '__del__' in BaseComm.__dict__)"
    assert fe.eval(routed) == ("kernel_comm_ext.kernel.ipykernel_comms", True)
    fe.run("%unload_ext kernel_comm_ext")
    assert fe.eval(routed) == ("ipykernel.comm.comm", False)
    comm_id = fe.eval("c.comm_id")
    mark = fe.mark()
    fe.run("c.send({'i': 1})")
    assert _sent_values(fe, comm_id, mark) == [1]
    fe.run("%load_ext kernel_comm_ext")
    assert fe.eval(routed) == ("kernel_comm_ext.kernel.ipykernel_comms", True)


PYVIZ_LOOP = """
import warnings
from pyviz_comms import JupyterComm
with warnings.catch_warnings():
    warnings.simplefilter('ignore', DeprecationWarning)
    channel = JupyterComm(id='loop-target')
    channel.init()
comm_id = channel.comm.comm_id
"""


# More than Jupyter Server lets through in its 3-second window at 1,000 a second.
PYVIZ_SENDS = 4000


def _pyviz_loop(kernel: ServerKernel) -> tuple[str, list[int]]:
    """pyviz_comms' server comm sends ``PYVIZ_SENDS`` messages; the ones the client got."""
    kernel.execute(PYVIZ_LOOP)
    comm_id = kernel.execute("print(comm_id)").stdout.strip()
    kernel.reply_to(
        kernel.send_execute(f"for i in range({PYVIZ_SENDS}): channel.send({{'i': i}})"), timeout=180
    )
    kernel.wait_quiet(3.0, timeout=180)
    received = [
        m["content"]["data"]["i"]
        for m in kernel.messages("iopub", "comm_msg")
        if m["content"]["comm_id"] == comm_id
    ]
    return comm_id, received


@needs_server_and_pyviz_comms
def test_a_pyviz_comms_loop_reaches_the_client_through_jupyter_server(
    server_kernel: ServerKernel,
) -> None:
    kernel = server_kernel
    kernel.execute("%load_ext kernel_comm_ext")
    _, received = _pyviz_loop(kernel)
    assert received == list(range(PYVIZ_SENDS)), (
        f"{len(received)} of {PYVIZ_SENDS} reached the client"
    )


@needs_server_and_pyviz_comms
def test_a_pyviz_comms_loop_on_the_default_comm_layer(server_kernel: ServerKernel) -> None:
    """Recorded, not asserted: what ipykernel's own layer lets Jupyter Server drop."""
    _, received = _pyviz_loop(server_kernel)
    print(f"\n[default pyviz_comms] {len(received)} of {PYVIZ_SENDS} reached the client")
    assert received == sorted(received)
