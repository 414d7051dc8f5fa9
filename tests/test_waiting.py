"""A running cell waits for the page: wait_for_msg, wait_for_change, wait_for_result.

Real kernels with the extension loaded; a jupyter_client frontend answers
while the cell waits, over the main shell or over a subshell as JupyterLab
does. README: "Callbacks and the running cell".
"""

from __future__ import annotations

import functools
import time
import typing as t
import uuid

import pytest

from .frontend import Frontend
from .helpers import ECHO_TARGETS, supports_subshells
from .test_subshells import _control, create_subshell, send_execute

SETUP = """
import asyncio, comm
from kernel_comm_ext import wait_for_msg, wait_for_change, wait_for_result, WaitTimeout
opened = {}
def keep(c, msg):
    opened[msg["content"]["data"]["name"]] = c
comm.get_comm_manager().register_target("keep", keep)
"""


def send_comm_shell(
    fe: Frontend, msg_type: str, content: dict[str, t.Any], subshell_id: str | None
) -> str:
    msg = fe.session.msg(msg_type, content)
    if subshell_id is not None:
        msg["header"]["subshell_id"] = subshell_id
    fe.session.send(fe.kc.shell_channel.socket, msg)
    return str(msg["header"]["msg_id"])


@pytest.fixture(params=[False, True], ids=["main-shell", "subshell"])
def route(request: pytest.FixtureRequest, ext_kernel: Frontend) -> tuple[Frontend, str | None]:
    """The extension's kernel, and the subshell the frontend sends comm messages to (or None)."""
    fe = ext_kernel
    fe.run(SETUP)
    if not request.param:
        return fe, None
    if not supports_subshells(fe):
        pytest.skip("this ipykernel has no kernel subshells")
    return fe, create_subshell(fe)


def open_kept(fe: Frontend, name: str, subshell: str | None) -> str:
    comm_id = uuid.uuid4().hex
    content = {"comm_id": comm_id, "target_name": "keep", "data": {"name": name}}
    fe.wait_idle(send_comm_shell(fe, "comm_open", content, subshell))
    deadline = time.monotonic() + 10
    while name not in fe.eval("list(opened)"):
        assert time.monotonic() < deadline, "the target never ran"
        time.sleep(0.05)
    return comm_id


def start_cell(fe: Frontend, code: str) -> str:
    since = fe.mark()
    cell = send_execute(fe, code)
    fe.wait_for("execute_input", parent_id=cell, since=since)
    time.sleep(0.3)  # the cell is now waiting
    return cell


def cell_result(fe: Frontend, cell: str, timeout: float = 30) -> tuple[str, list[str]]:
    fe.wait_idle(cell, timeout=timeout)
    output = fe.iopub(parent_id=cell)
    stdout = "".join(
        m["content"]["text"]
        for m in output
        if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"
    )
    errors = [m["content"]["ename"] for m in output if m["msg_type"] == "error"]
    return stdout, errors


@pytest.mark.parametrize("style", ["async", "sync"])
def test_a_cell_waits_for_a_comm_message(route: tuple[Frontend, str | None], style: str) -> None:
    fe, subshell = route
    comm_id = open_kept(fe, "w", subshell)
    call = (
        "await wait_for_msg(c, timeout=20)" if style == "async" else "wait_for_msg(c, timeout=20)"
    )
    cell = start_cell(fe, f"c = opened['w']\nm = {call}\nprint('got', m['content']['data'])")
    send_comm_shell(fe, "comm_msg", {"comm_id": comm_id, "data": {"answer": 42}}, subshell)
    assert cell_result(fe, cell) == ("got {'answer': 42}\n", [])


def test_a_sync_cell_waits_for_a_widget_change(route: tuple[Frontend, str | None]) -> None:
    pytest.importorskip("ipywidgets")
    fe, subshell = route
    fe.run("import ipywidgets as widgets\nbutton = widgets.IntText()")
    comm_id = fe.eval("button.model_id")
    cell = start_cell(fe, "print('value', wait_for_change(button, 'value', timeout=20))")
    update = {"method": "update", "state": {"value": 7}, "buffer_paths": []}
    send_comm_shell(fe, "comm_msg", {"comm_id": comm_id, "data": update}, subshell)
    assert cell_result(fe, cell) == ("value 7\n", [])


@pytest.mark.parametrize("style", ["async", "sync"])
def test_a_wait_ends_at_its_timeout(ext_kernel: Frontend, style: str) -> None:
    fe = ext_kernel
    fe.run(SETUP + "c = comm.create_comm(target_name='nobody')")
    call = (
        "await wait_for_msg(c, timeout=0.5)" if style == "async" else "wait_for_msg(c, timeout=0.5)"
    )
    started = time.monotonic()
    cell = start_cell(fe, call)
    assert cell_result(fe, cell) == ("", ["WaitTimeout"])
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("style", ["async", "sync"])
def test_an_interrupt_ends_a_wait(ext_kernel: Frontend, style: str) -> None:
    fe = ext_kernel
    fe.run(SETUP + "c = comm.create_comm(target_name='nobody')")
    call = (
        "await wait_for_msg(c, timeout=120)" if style == "async" else "wait_for_msg(c, timeout=120)"
    )
    cell = start_cell(fe, call)
    started = time.monotonic()
    # ipykernel 6.19 answers with an empty content.
    assert _control(fe, "interrupt_request", {}).get("status", "ok") == "ok"
    assert cell_result(fe, cell, timeout=20) == ("", ["KeyboardInterrupt"])
    assert time.monotonic() - started < 10
    # ipykernel 6 aborts requests that reach it while it handles the error (stop_on_error).
    alive = [fe.execute("print('still alive')", allow_error=True) for _ in range(2)]
    assert alive[-1].stdout == "still alive\n"


@pytest.mark.parametrize("style", ["async", "sync"])
def test_other_comms_are_answered_during_a_wait(
    route: tuple[Frontend, str | None], style: str
) -> None:
    fe, subshell = route
    fe.run(ECHO_TARGETS)
    echo_id = uuid.uuid4().hex
    content = {"comm_id": echo_id, "target_name": "echo", "data": {}}
    fe.wait_idle(send_comm_shell(fe, "comm_open", content, subshell))
    comm_id = open_kept(fe, "w", subshell)
    call = (
        "await wait_for_msg(c, timeout=20)" if style == "async" else "wait_for_msg(c, timeout=20)"
    )
    cell = start_cell(fe, f"c = opened['w']\nm = {call}\nprint('done')")
    since = fe.mark()
    for n in range(10):
        send_comm_shell(fe, "comm_msg", {"comm_id": echo_id, "data": {"n": n}}, subshell)
    echoes = fe.wait_for("comm_msg", comm_id=echo_id, since=since, count=10, timeout=15)
    assert [m["content"]["data"]["echo"]["n"] for m in echoes] == list(range(10))
    assert fe.iopub("status", parent_id=cell)[-1]["content"]["execution_state"] == "busy"
    send_comm_shell(fe, "comm_msg", {"comm_id": comm_id, "data": {}}, subshell)
    assert cell_result(fe, cell) == ("done\n", [])


@pytest.mark.parametrize(
    ("kind", "style"), [("concurrent", "sync"), ("asyncio", "sync"), ("asyncio", "async")]
)
def test_a_cell_waits_for_a_future_a_callback_resolves(
    route: tuple[Frontend, str | None], kind: str, style: str
) -> None:
    fe, subshell = route
    comm_id = open_kept(fe, "w", subshell)
    make = (
        "concurrent.futures.Future()"
        if kind == "concurrent"
        else "asyncio.get_event_loop().create_future()"
    )
    # Main dispatch runs callbacks on the main loop's thread, so they may resolve
    # an asyncio future of that loop directly, even while a synchronous cell waits.
    resolve = "answer.set_result(x)"
    fe.run(
        "import concurrent.futures\n"
        f"answer = {make}\n"
        "def on_msg(m):\n"
        "    x = m['content']['data']['x']\n"
        f"    {resolve}\n"
        "opened['w'].on_msg(on_msg)"
    )
    call = "wait_for_result(answer, timeout=20)"
    cell = start_cell(fe, f"print('x =', {'await ' if style == 'async' else ''}{call})")
    send_comm_shell(fe, "comm_msg", {"comm_id": comm_id, "data": {"x": 3}}, subshell)
    assert cell_result(fe, cell) == ("x = 3\n", [])


def test_a_wait_inside_a_callback_another_wait_runs_is_refused(ext_kernel: Frontend) -> None:
    """A clear error, not a hang: the callback's WaitUnsupported is shown under its message."""
    fe = ext_kernel
    fe.run(
        SETUP + "def nested(m):\n    wait_for_msg(opened['inner'], timeout=60)\n"
        "c = comm.create_comm(target_name='nobody')"
    )
    inner = open_kept(fe, "inner", None)
    fe.run("opened['inner'].on_msg(nested)")
    outer = fe.eval("c.comm_id")
    cell = start_cell(fe, "wait_for_msg(c, timeout=30)\nprint('outer done')")
    msg_id = send_comm_shell(fe, "comm_msg", {"comm_id": inner, "data": {}}, None)
    error = fe.wait_for("error", parent_id=msg_id, timeout=10)[0]["content"]
    assert error["ename"] == "WaitUnsupported"
    send_comm_shell(fe, "comm_msg", {"comm_id": outer, "data": {}}, None)
    assert cell_result(fe, cell) == ("outer done\n", [])


README_LOOP = """
import ipywidgets as widgets
button = widgets.Button(description="Go on")
clicks = widgets.IntText()
button.on_click(lambda b: setattr(clicks, "value", clicks.value + 1))
"""


def test_the_readme_loop_show_a_button_wait_for_the_click_go_on(
    route: tuple[Frontend, str | None],
) -> None:
    """README's example: a synchronous loop waits for three clicks, one at a time."""
    pytest.importorskip("ipywidgets")
    fe, subshell = route
    fe.run(README_LOOP)
    button_id = fe.eval("button.model_id")
    cell = start_cell(
        fe,
        "for step in range(3):\n"
        "    wait_for_change(clicks, 'value', timeout=20)\n"
        "    print('step', step, flush=True)",
    )
    click = {"method": "custom", "content": {"event": "click"}}
    for step in range(3):
        send_comm_shell(fe, "comm_msg", {"comm_id": button_id, "data": click}, subshell)
        fe.wait_for(
            "stream",
            parent_id=cell,
            predicate=functools.partial(_text_has, f"step {step}"),
            timeout=15,
        )
    assert cell_result(fe, cell) == ("step 0\nstep 1\nstep 2\n", [])


def _text_has(text: str, msg: dict[str, t.Any]) -> bool:
    return text in msg["content"]["text"]
