"""Parity with ipykernel 7: subshell reply routing, comms while an async cell awaits.

Each test runs on ipykernel's own comm layer and on ours: what ipykernel
promises, the extension must keep. Tests skip where the installed ipykernel
does not offer the behaviour (ipykernel 6 has no subshells).
"""

from __future__ import annotations

import queue
import time
import typing as t

import pytest

from .frontend import DEFAULT_TIMEOUT, Frontend, KernelError
from .helpers import supports_subshells

LAYERS = ["default", "extension"]
ROUTED = "%load_ext kernel_comm_ext\n%config KernelCommManager.callback_dispatch = 'routed'"


@pytest.fixture(params=LAYERS)
def layer_kernel(request: pytest.FixtureRequest, kernel: Frontend) -> Frontend:
    """A kernel on ipykernel's comm layer, or with the extension loaded.

    The extension keeps ipykernel's routing with ``callback_dispatch = 'routed'``;
    its default runs callbacks on the main loop (tested at the end of this file).
    """
    if request.param == "extension":
        kernel.run(ROUTED)
    return kernel


def _control(fe: Frontend, msg_type: str, content: dict[str, t.Any]) -> dict[str, t.Any]:
    msg = fe.session.msg(msg_type, content)
    fe.kc.control_channel.send(msg)
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while time.monotonic() < deadline:
        try:
            reply = fe.kc.get_control_msg(timeout=1)
        except queue.Empty:
            continue
        if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
            return t.cast(dict[str, t.Any], reply["content"])
    raise KernelError(f"no reply to {msg_type}")


def create_subshell(fe: Frontend) -> str:
    """Ask the kernel for a subshell (control channel); return its id."""
    reply = _control(fe, "create_subshell_request", {})
    assert reply["status"] == "ok", reply
    return str(reply["subshell_id"])


def send_execute(fe: Frontend, code: str, subshell_id: str | None = None) -> str:
    """Send an execute_request (to a subshell if given) without waiting; return its msg id."""
    content = {"code": code, "silent": False, "store_history": False, "user_expressions": {}}
    msg = fe.session.msg("execute_request", content)
    if subshell_id is not None:
        msg["header"]["subshell_id"] = subshell_id
    fe.kc.shell_channel.send(msg)
    return str(msg["header"]["msg_id"])


def wait_execute(fe: Frontend, msg_id: str) -> str:
    """Wait for an execution's idle status; return its stdout (it must have succeeded)."""
    fe.wait_idle(msg_id)
    output = fe.iopub(parent_id=msg_id)
    errors = [m["content"] for m in output if m["msg_type"] == "error"]
    assert not errors, errors
    return "".join(
        m["content"]["text"]
        for m in output
        if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"
    )


def run_in(fe: Frontend, code: str, subshell_id: str) -> str:
    return wait_execute(fe, send_execute(fe, code, subshell_id))


@pytest.fixture
def subshell_kernel(layer_kernel: Frontend) -> Frontend:
    if not supports_subshells(layer_kernel):
        pytest.skip("this ipykernel has no kernel subshells")
    return layer_kernel


RECORD_THREADS = """
import comm, threading
handled = []
def record(m):
    handled.append((m["content"]["data"]["n"], threading.current_thread().name))
"""


def test_replies_go_to_the_subshell_that_sent(subshell_kernel: Frontend) -> None:
    fe = subshell_kernel
    fe.run(RECORD_THREADS)
    main_thread = fe.eval("threading.current_thread().name")
    subshell = create_subshell(fe)
    subshell_thread = run_in(fe, "print(threading.current_thread().name, end='')", subshell)
    assert subshell_thread != main_thread

    # A comm created in the subshell: the frontend's messages are handled there.
    run_in(
        fe,
        "c = comm.create_comm(target_name='sub', data={'content': {'id': 'req-1'}})\n"
        "c.on_msg(record)",
        subshell,
    )
    comm_id = fe.eval("c.comm_id")
    fe.send_comm(comm_id, {"n": 1})
    # Sent from the main shell last: plain replies now go to the main shell...
    fe.run("c.send({'from': 'main'})")
    fe.send_comm(comm_id, {"n": 2})
    # ...but a reply to the request the subshell sent still goes to the subshell.
    fe.send_comm(comm_id, {"n": 3, "content": {"id": "req-1"}})
    run_in(fe, "pass", subshell)
    assert fe.eval("handled") == [(1, subshell_thread), (2, main_thread), (3, subshell_thread)]


def test_comm_created_by_a_target_in_a_subshell(subshell_kernel: Frontend) -> None:
    """A comm opened by the frontend and answered from a subshell routes replies there."""
    fe = subshell_kernel
    fe.run(
        RECORD_THREADS + "opened = []\n"
        "get_ipython().kernel.comm_manager.register_target("
        "'t', lambda c, m: (opened.append(c), c.on_msg(record)))"
    )
    subshell = create_subshell(fe)
    subshell_thread = run_in(fe, "print(threading.current_thread().name, end='')", subshell)
    comm_id = fe.open_comm("t")
    run_in(fe, "opened[0].send({'hello': 'from the subshell'})", subshell)
    fe.send_comm(comm_id, {"n": 1})
    run_in(fe, "pass", subshell)
    assert fe.eval("handled") == [(1, subshell_thread)]


ASYNC_WAIT = """
import asyncio, comm
got = asyncio.Event()
received = []
def on_reply(m):
    received.append(m["content"]["data"])
    got.set()
waiter = comm.create_comm(target_name="waiter")
waiter.on_msg(on_reply)
"""


def test_comm_messages_dispatched_while_an_async_cell_awaits(subshell_kernel: Frontend) -> None:
    fe = subshell_kernel
    shell_main = fe.eval("__import__('inspect').getsource(type(get_ipython().kernel).shell_main)")
    if "comm_msg" not in shell_main:
        pytest.skip("this ipykernel does not dispatch comms while a cell awaits")
    fe.run(ASYNC_WAIT)
    comm_id = fe.eval("waiter.comm_id")
    cell = send_execute(
        fe, "await asyncio.wait_for(got.wait(), 20)\nprint('reply:', received[-1], end='')"
    )
    fe.wait_for("execute_input", parent_id=cell)
    time.sleep(0.2)  # the cell is now awaiting
    fe.send_comm(comm_id, {"answer": 42}, wait=False)
    assert wait_execute(fe, cell) == "reply: {'answer': 42}"


def test_async_callback_runs_on_the_subshell_that_handles_the_message(
    ext_kernel: Frontend,
) -> None:
    """Coroutine callbacks (an extension feature) run on the loop of the subshell's thread."""
    fe = ext_kernel
    fe.run("%config KernelCommManager.callback_dispatch = 'routed'")
    if not supports_subshells(fe):
        pytest.skip("this ipykernel has no kernel subshells")
    fe.run(RECORD_THREADS)
    subshell = create_subshell(fe)
    subshell_thread = run_in(fe, "print(threading.current_thread().name, end='')", subshell)
    run_in(
        fe,
        "import asyncio\n"
        "async def arecord(m):\n"
        "    await asyncio.sleep(0)\n"
        "    record(m)\n"
        "c = comm.create_comm(target_name='sub-async')\n"
        "c.on_msg(arecord)",
        subshell,
    )
    fe.send_comm(fe.eval("c.comm_id"), {"n": 1})
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while not fe.eval("handled") and time.monotonic() < deadline:
        run_in(fe, "await asyncio.sleep(0.01)", subshell)
    assert fe.eval("handled") == [(1, subshell_thread)]


def test_main_dispatch_runs_subshell_messages_on_the_main_thread(ext_kernel: Frontend) -> None:
    """The default ``callback_dispatch = 'main'``: handled on the main loop, in arrival order."""
    fe = ext_kernel
    if not supports_subshells(fe):
        pytest.skip("this ipykernel has no kernel subshells")
    fe.run(
        RECORD_THREADS + "opened = []\n"
        "get_ipython().kernel.comm_manager.register_target("
        "'t', lambda c, m: (opened.append(c), c.on_msg(record)))"
    )
    main_thread = fe.eval("threading.current_thread().name")
    subshell = create_subshell(fe)
    comm_id = fe.open_comm("t")
    run_in(fe, "opened[0].send({'hello': 'from the subshell'})", subshell)
    ids = []
    for n in range(20):
        msg = fe.session.msg("comm_msg", {"comm_id": comm_id, "data": {"n": n}})
        msg["header"]["subshell_id"] = subshell
        fe.kc.shell_channel.send(msg)
        ids.append(msg["header"]["msg_id"])
    for msg_id in ids:
        fe.wait_idle(msg_id)
    assert fe.eval("handled") == [(n, main_thread) for n in range(20)]
