"""Callbacks may be coroutines; their errors are logged and shown to the user.

``async def`` targets, ``on_msg`` and ``on_close`` run on the kernel's event
loop and start in arrival order. An exception from any callback, sync or
async, is logged with its traceback and shown on IOPub as an ``error`` message
of the request that caused it, unless ``KernelCommManager.show_callback_errors``
is False (set in ``ipython_kernel_config.py`` or with ``%config``).
"""

from __future__ import annotations

import time
import typing as t
from pathlib import Path

import pytest

from .conftest import AUTOLOAD_OFF
from .frontend import Frontend, start_frontend
from .helpers import DEFINE_DELIBERATE, DELIBERATE, REGISTRY, KernelLog, tracebacks

CALLBACKS = """
import asyncio, threading, comm
_kernel = get_ipython().kernel
events = []

def where():
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    return (threading.current_thread() is threading.main_thread(),
            loop is not None and loop is _kernel.io_loop.asyncio_loop)

def fails(msg):
    return msg["content"]["data"].get("fail", False)

def sync_target(c, msg):
    events.append(("target", where()))
    if fails(msg):
        raise DeliberateError("sync target failed")
    def on_msg(m):
        events.append(("msg", m["content"]["data"]["n"], where()))
        if fails(m):
            raise DeliberateError("sync on_msg failed")
        c.send({"done": m["content"]["data"]["n"]})
    def on_close(m):
        events.append(("close", where()))
        if fails(m):
            raise DeliberateError("sync on_close failed")
    c.on_msg(on_msg)
    c.on_close(on_close)

async def async_target(c, msg):
    events.append(("target", where()))
    await asyncio.sleep(0)
    if fails(msg):
        raise DeliberateError("async target failed")
    async def on_msg(m):
        data = m["content"]["data"]
        events.append(("msg", data["n"], where()))
        await asyncio.sleep(data.get("sleep", 0))
        if fails(m):
            raise DeliberateError("async on_msg failed")
        c.send({"done": data["n"]})
    async def on_close(m):
        events.append(("close", where()))
        await asyncio.sleep(0)
        if fails(m):
            raise DeliberateError("async on_close failed")
    c.on_msg(on_msg)
    c.on_close(on_close)

comm.get_comm_manager().register_target("sync", sync_target)
comm.get_comm_manager().register_target("async", async_target)
"""

KINDS = ["sync", "async"]


def _setup(fe: Frontend) -> None:
    fe.run("%load_ext kernel_comm_ext")
    fe.run(DEFINE_DELIBERATE + CALLBACKS)


@pytest.fixture
def cb_kernel(ext_kernel: Frontend) -> Frontend:
    ext_kernel.run(DEFINE_DELIBERATE + CALLBACKS)
    return ext_kernel


@pytest.mark.parametrize("kind", KINDS)
def test_callbacks_run_on_the_kernel_loop(cb_kernel: Frontend, kind: str) -> None:
    fe = cb_kernel
    comm_id = fe.open_comm(kind)
    mark = fe.mark()
    fe.send_comm(comm_id, {"n": 1})
    assert fe.wait_for("comm_msg", comm_id=comm_id, since=mark)[0]["content"]["data"] == {"done": 1}
    fe.close_comm(comm_id)
    fe.run("pass")
    # (main thread, running loop is the kernel's)
    expected_where = (True, True)
    assert fe.eval("events") == [
        ("target", expected_where),
        ("msg", 1, expected_where),
        ("close", expected_where),
    ]


def test_async_callbacks_start_in_arrival_order(cb_kernel: Frontend) -> None:
    fe = cb_kernel
    comm_id = fe.open_comm("async")
    count = 30
    mark = fe.mark()
    for n in range(count):
        # Later messages sleep less: they finish first, but must start in order.
        fe.send_comm(comm_id, {"n": n, "sleep": (count - n) * 0.02}, wait=False)
    done = fe.wait_for("comm_msg", comm_id=comm_id, since=mark, count=count)
    assert sorted(m["content"]["data"]["done"] for m in done) == list(range(count))
    started = [e[1] for e in fe.eval("events") if e[0] == "msg"]
    assert started == list(range(count))
    finished = [m["content"]["data"]["done"] for m in done]
    # The first one sleeps longest: the later ones ran while it awaited.
    assert finished.index(0) > finished.index(count - 1), "the coroutines did not overlap"


def _fail(fe: Frontend, kind: str, callback: str) -> tuple[str, str]:
    """Make the ``callback`` of a ``kind`` comm raise; return (comm id, the request's msg id)."""
    if callback == "target":
        comm_id = f"{kind}-target-fails"
        msg_id = fe.send_shell(
            "comm_open", {"comm_id": comm_id, "target_name": kind, "data": {"fail": True}}
        )
        return comm_id, msg_id
    comm_id = fe.open_comm(kind)
    msg_type = "comm_msg" if callback == "on_msg" else "comm_close"
    msg_id = fe.send_shell(msg_type, {"comm_id": comm_id, "data": {"n": 0, "fail": True}})
    return comm_id, msg_id


def _described(callback: str, comm_id: str, kind: str) -> str:
    if callback == "target":
        return f"Exception in the comm target {kind!r} (opening comm {comm_id})"
    return f"Exception in the {callback} callback of comm {comm_id} ({kind})"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("callback", ["target", "on_msg", "on_close"])
def test_callback_errors_are_logged_and_shown(
    cb_kernel: Frontend, kind: str, callback: str
) -> None:
    fe = cb_kernel
    log = KernelLog(fe)
    mark = fe.mark()
    comm_id, msg_id = _fail(fe, kind, callback)
    message = f"{kind} {'target' if callback == 'target' else callback} failed"
    # Shown to the user, as IPython shows errors, in the output of the request that caused it.
    errors = fe.wait_for("error", since=mark)
    assert len(errors) == 1
    error = errors[0]
    assert error["content"]["ename"] == DELIBERATE
    assert error["content"]["evalue"] == message
    assert any(DELIBERATE in line for line in error["content"]["traceback"])
    assert error["parent_header"]["msg_id"] == msg_id
    # Logged with its traceback.
    fe.run("pass")
    written = log.new()
    assert _described(callback, comm_id, kind) in written
    assert any(block.endswith(f"{DELIBERATE}: {message}") for block in tracebacks(written)), written
    # A failing target closes the comm back; other failures leave it as it was.
    closes = fe.iopub("comm_close", comm_id=comm_id, since=mark)
    registry = fe.eval(REGISTRY)
    if callback == "target":
        assert len(closes) == 1
        assert comm_id not in registry
    elif callback == "on_msg":
        assert closes == []
        assert comm_id in registry
        mark = fe.mark()
        fe.send_comm(comm_id, {"n": 2})
        assert fe.wait_for("comm_msg", comm_id=comm_id, since=mark)
    else:
        assert comm_id not in registry
    assert fe.run("print('still serving')") == "still serving\n"


LOGGED = "Exception in the on_msg callback"


def _count_errors_shown(fe: Frontend) -> tuple[int, int]:
    """Make a sync and an async callback fail; return (errors shown, errors logged)."""
    log = KernelLog(fe)
    mark = fe.mark()
    opened = [_fail(fe, kind, "on_msg")[0] for kind in KINDS]
    # Errors are always logged; wait (yielding the kernel's loop) until the async one is.
    written, deadline = "", time.monotonic() + 20
    while written.count(LOGGED) < len(KINDS) and time.monotonic() < deadline:
        fe.run("await asyncio.sleep(0.02)")
        written += log.new()
    logged = written.count(LOGGED)
    shown = len(fe.iopub("error", since=mark))
    for comm_id in opened:
        fe.close_comm(comm_id)
    return shown, logged


def test_error_display_switched_at_run_time_with_config_magic(cb_kernel: Frontend) -> None:
    fe = cb_kernel
    assert fe.eval("get_ipython().kernel.comm_manager.show_callback_errors") is True
    assert _count_errors_shown(fe) == (2, 2)
    fe.run("%config KernelCommManager.show_callback_errors = False")
    assert _count_errors_shown(fe) == (0, 2)
    fe.run("%config KernelCommManager.show_callback_errors = True")
    assert _count_errors_shown(fe) == (2, 2)


@pytest.fixture
def configured_kernel(tmp_path: Path) -> t.Iterator[Frontend]:
    """A kernel whose ipython_kernel_config.py turns error display off and caps frontend comms."""
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        "c.KernelCommManager.show_callback_errors = False\n"
        "c.KernelCommManager.max_frontend_comms = 3\n"
    )
    fe = start_frontend(tmp_path, env={**AUTOLOAD_OFF, "IPYTHONDIR": str(tmp_path / "ipython")})
    try:
        _setup(fe)
        yield fe
    finally:
        fe.shutdown()


def test_error_display_off_in_config_file(configured_kernel: Frontend) -> None:
    fe = configured_kernel
    assert fe.eval("get_ipython().kernel.comm_manager.show_callback_errors") is False
    assert _count_errors_shown(fe) == (0, 2)
    fe.run("%config KernelCommManager.show_callback_errors = True")
    assert _count_errors_shown(fe) == (2, 2)


def test_frontend_comm_cap_from_config_file_and_config_magic(configured_kernel: Frontend) -> None:
    fe = configured_kernel
    log = KernelLog(fe)
    fe.run("import comm; from_kernel = [comm.create_comm(target_name='k') for _ in range(5)]")
    accepted = [fe.open_comm("sync") for _ in range(3)]
    mark = fe.mark()
    refused = fe.open_comm("sync")
    assert len(fe.wait_for("comm_close", comm_id=refused, since=mark)) == 1
    assert (
        f"Refused comm_open for {refused} (target 'sync'): the frontend already has 3 comms open,"
        " the limit set by KernelCommManager.max_frontend_comms; closing it back."
    ) in log.new()
    registry = fe.eval(REGISTRY)
    assert refused not in registry
    assert set(accepted) <= set(registry)
    assert len(registry) == 3 + 5  # comms the kernel opened do not count

    # Closing one makes room for one.
    fe.close_comm(accepted.pop())
    accepted.append(fe.open_comm("sync"))
    mark = fe.mark()
    again = fe.open_comm("sync")
    assert fe.wait_for("comm_close", comm_id=again, since=mark)
    assert f"Refused comm_open for {again}" in log.new()

    fe.run("%config KernelCommManager.max_frontend_comms = 5")
    more = [fe.open_comm("sync") for _ in range(2)]
    assert set(more) <= set(fe.eval(REGISTRY))
    fe.run("%config KernelCommManager.max_frontend_comms = 0")
    many = [fe.open_comm("sync") for _ in range(20)]
    assert set(many) <= set(fe.eval(REGISTRY))
    assert "Refused" not in log.new()
