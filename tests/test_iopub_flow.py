"""Lossless IOPub: nothing dropped for a slow reader, no kernel frozen.

Every test runs a real kernel; a raw zmq SUB socket on the kernel's IOPub port
plays the frontend being tested (slow, stalled, or going away) while the test
``Frontend`` keeps its own fast reader.
"""

from __future__ import annotations

import time
import typing as t

import pytest

from kernel_comm_ext.iopub.wire import MAX_BATCH_MESSAGES

from .frontend import Frontend
from .helpers import comm_magic
from .iopub_reader import RawIOPubReader, is_idle_of

N_MESSAGES = 20_000
FLOOD = """
import comm
flood = comm.create_comm(target_name="flood")
for i in range({n}):
    flood.send({{"i": i, "pad": "x" * {pad}}})
"""
STATS = "get_ipython().kernel.comm_manager.iopub_stats()"
WARNING_TEXT = "has taken no message for"
DEFAULT_STALL_TIMEOUT = 10.0
# On a loaded 2-core machine timings wobble: time bounds allow this much more,
# and the figures of iopub_stats() are what the tests rely on.
SLACK = 10.0
# A message of 1 kB fills loopback TCP buffers (several MB) before zmq's
# high-water mark, so a reader that reads nothing makes the kernel wait.
PAD = 1000

ON_IOPUB_THREAD = """
import threading, zmq
from kernel_comm_ext.iopub.socket import LosslessSocket
_th = get_ipython().kernel.iopub_thread
def on_iopub(f):
    box, done = [], threading.Event()
    _th.schedule(lambda: (box.append(f()), done.set()))
    assert done.wait(10)
    return box[0]
def iopub_state():
    return on_iopub(lambda: (
        isinstance(_th.socket, LosslessSocket),
        isinstance(_th.socket, zmq.Socket),
        _th.socket.getsockopt(zmq.SNDHWM),
        "schedule" in vars(_th),
    ))
"""


@pytest.fixture
def ext_kernel(ext_kernel: Frontend) -> Frontend:
    """The extension with its rate budget off: these floods are meant to reach IOPub at once.

    With the budget, comm messages past 500/s wait in the kernel before IOPub
    (README, "Delivery under load"), and a flood never fills the socket.
    """
    ext_kernel.run("%config KernelCommManager.rate_budget = 0")
    return ext_kernel


def _flood(n: int = N_MESSAGES, pad: int = 0) -> str:
    return FLOOD.format(n=n, pad=pad)


def _read_slowly(
    reader: RawIOPubReader, msg_id: str, timeout: float = 120.0
) -> tuple[list[int], bool]:
    """Read like a slow frontend (1 ms pause every 2 messages) until the cell's idle status.

    Returns the ``i`` of every comm message of the cell in arrival order, and
    whether the idle status came. Stops 3 s after the last message if it does not.
    """
    values: list[int] = []
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        msg = reader.recv(timeout=3.0)
        if msg is None:
            return values, False
        count += 1
        if count % 2 == 0:
            time.sleep(0.001)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "comm_msg":
            values.append(msg["content"]["data"]["i"])
        elif is_idle_of(msg, msg_id):
            return values, True
    raise AssertionError(f"slow reader still reading after {timeout} s")


def _stats(fe: Frontend) -> dict[str, t.Any]:
    return t.cast(dict[str, t.Any], fe.eval(f"{STATS}.__dict__"))


def _timed_run(fe: Frontend, code: str, timeout: float = 120.0) -> float:
    start = time.monotonic()
    fe.run(code, timeout=timeout)
    return time.monotonic() - start


def _timed_reply(fe: Frontend, code: str, timeout: float = 120.0) -> float:
    """Seconds until the execute_reply (on the default layer the idle status may be lost)."""
    start = time.monotonic()
    msg_id = fe.kc.execute(code, store_history=False)
    assert fe._shell_reply(msg_id, timeout)["content"]["status"] == "ok"
    return time.monotonic() - start


@pytest.fixture
def raw_reader(kernel: Frontend) -> t.Iterator[RawIOPubReader]:
    reader = RawIOPubReader(kernel)
    try:
        yield reader
    finally:
        reader.close()


def test_slow_reader_receives_every_comm_message_in_order_and_idle(
    ext_kernel: Frontend, raw_reader: RawIOPubReader, capsys: pytest.CaptureFixture[str]
) -> None:
    msg_id = ext_kernel.kc.execute(_flood(), store_history=False)
    values, idle = _read_slowly(raw_reader, msg_id)
    stats = _stats(ext_kernel)
    with capsys.disabled():
        print(
            f"\n[lossless IOPub] slow reader: {len(values)} of {N_MESSAGES} comm messages,"
            f" idle {'received' if idle else 'LOST'}; sends waited {stats['waits']} times"
            f" ({stats['waited_messages']} messages, {stats['wait_seconds']:.2f} s),"
            f" cell held back {stats['producer_waits']} times"
            f" ({stats['producer_wait_seconds']:.2f} s), dropped {stats['dropped']}"
        )
    assert values == list(range(N_MESSAGES))
    assert idle
    assert stats["state"] == "lossless"
    assert stats["dropped"] == 0
    assert stats["fallbacks"] == 0
    assert stats["waits"] > 0  # the reader really was too slow for zmq's buffers
    report = comm_magic(ext_kernel)
    assert "IOPub channel\nlossless, send high-water mark 10000\n" in report
    assert f"sends waited for a frontend: {stats['waits']} times" in report
    assert "stalled frontends given up on: 0 times, 0 messages dropped for them" in report


def test_slow_reader_on_default_comm_layer_shows_the_loss(
    kernel: Frontend, raw_reader: RawIOPubReader, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same cell and reader without the extension: ipykernel drops (figures only)."""
    msg_id = kernel.kc.execute(_flood(), store_history=False)
    values, idle = _read_slowly(raw_reader, msg_id)
    kernel._shell_reply(msg_id, 60)  # its idle status may be lost to the Frontend too
    with capsys.disabled():
        print(
            f"\n[default comm layer] slow reader: {len(values)} of {N_MESSAGES} comm messages,"
            f" idle {'received' if idle else 'LOST'}"
        )
    # Whatever arrived is in order; how much is lost depends on the machine.
    assert values == sorted(values)


def _warnings_logged(fe: Frontend) -> int:
    return fe.kernel_log().count(WARNING_TEXT)


def test_stalled_reader_falls_back_after_the_wait_and_recovers(ext_kernel: Frontend) -> None:
    """The documented default path: 10 s wait, one warning, lossless again after."""
    cell = _flood(pad=PAD)
    work = _timed_run(ext_kernel, cell)
    reader = RawIOPubReader(ext_kernel)
    try:
        elapsed = _timed_run(ext_kernel, cell)
        # It waited for the reader (lossless first), then fell back: not frozen.
        assert DEFAULT_STALL_TIMEOUT * 0.9 <= elapsed <= DEFAULT_STALL_TIMEOUT + work + SLACK
        assert ext_kernel.kernel_info(timeout=5)["status"] == "ok"
        # While the reader still reads nothing, later cells do not wait for it again:
        # zmq skips it until it catches up (else a second fallback would be counted).
        ext_kernel.run(cell, timeout=60)
        stats = _stats(ext_kernel)
        last_sent = time.monotonic()  # the kernel's last output while the reader is stalled
        assert stats["state"] == "lossless"
        assert stats["fallbacks"] == 1
        assert stats["dropped"] > 0
        assert _warnings_logged(ext_kernel) == 1
        assert "KernelCommManager.iopub_stall_timeout" in ext_kernel.kernel_log()

        # The reader stays stalled for a whole stall timeout (and the slack) after that
        # output: had any of it waited for the reader again, a second fallback would be
        # logged before it reads again.
        time.sleep(max(0.0, last_sent + DEFAULT_STALL_TIMEOUT + SLACK - time.monotonic()))
        reader.drain(quiet=0.5)  # the reader reads again: what zmq kept for it
        msg_id = ext_kernel.execute("print('after the stall')").msg_id
        later: list[dict[str, t.Any]] = []
        while not later or not is_idle_of(later[-1], msg_id):
            msg = reader.recv(timeout=10)
            assert msg is not None, "later output never reached the recovered reader"
            later.append(msg)
        texts = [m["content"]["text"] for m in later if m["msg_type"] == "stream"]
        assert texts == ["after the stall\n"]
        assert _stats(ext_kernel)["state"] == "lossless"
        assert _warnings_logged(ext_kernel) == 1
    finally:
        reader.close()


SHORT_STALL_TIMEOUT = 2.0


def test_stalled_reader_with_a_shorter_configured_wait(ext_kernel: Frontend) -> None:
    """The same with ``iopub_stall_timeout = 2`` (quick; also run on the oldest ipykernel)."""
    ext_kernel.run(f"%config KernelCommManager.iopub_stall_timeout = {SHORT_STALL_TIMEOUT}")
    cell = _flood(pad=PAD)
    work = _timed_run(ext_kernel, cell)
    reader = RawIOPubReader(ext_kernel)
    try:
        elapsed = _timed_run(ext_kernel, cell)
        assert SHORT_STALL_TIMEOUT * 0.9 <= elapsed <= SHORT_STALL_TIMEOUT + work + SLACK
        assert ext_kernel.kernel_info(timeout=5)["status"] == "ok"
        stats = _stats(ext_kernel)
        assert (stats["fallbacks"], stats["state"]) == (1, "lossless")
        assert stats["dropped"] > 0
        assert _warnings_logged(ext_kernel) == 1
        assert "KernelCommManager.iopub_stall_timeout" in ext_kernel.kernel_log()
        reader.drain(quiet=0.5)
        msg_id = ext_kernel.execute("print('after the stall')").msg_id
        later: list[dict[str, t.Any]] = []
        while not later or not is_idle_of(later[-1], msg_id):
            msg = reader.recv(timeout=10)
            assert msg is not None, "later output never reached the recovered reader"
            later.append(msg)
        assert [m["content"]["text"] for m in later if m["msg_type"] == "stream"] == [
            "after the stall\n"
        ]
    finally:
        reader.close()


def test_disconnecting_reader_never_holds_the_cell(ext_kernel: Frontend) -> None:
    cell = _flood(pad=PAD)
    work = _timed_run(ext_kernel, cell)
    reader = RawIOPubReader(ext_kernel)
    try:
        msg_id = ext_kernel.kc.execute(cell, store_history=False)
        for n in range(2_000):  # a slow reader, mid-burst...
            assert reader.recv(timeout=10) is not None
            if n % 2:
                time.sleep(0.001)
    finally:
        reader.close()  # ...goes away
    closed_at = time.monotonic()
    ext_kernel._shell_reply(msg_id, 60)
    ext_kernel.wait_idle(msg_id)
    assert time.monotonic() - closed_at <= work + SLACK
    stats = _stats(ext_kernel)
    assert stats["waits"] >= 1  # the cell was held back by the reader before it left
    assert stats["fallbacks"] == 0
    assert stats["state"] == "lossless"


HELD_BACK = """
%config KernelCommManager.iopub_backlog_messages = 100
%config KernelCommManager.iopub_stall_timeout = 120
"""
ENDLESS_FLOOD = """
import comm
flood = comm.create_comm(target_name="flood")
i = 0
while {condition}:
    flood.send({{"i": i, "pad": "x" * 1000}})
    i += 1
"""


def _control_request(fe: Frontend, msg_type: str, content: dict[str, t.Any]) -> dict[str, t.Any]:
    msg = fe.session.msg(msg_type, content)
    fe.kc.control_channel.send(msg)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        reply = fe.kc.control_channel.get_msg(timeout=10)
        if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
            return t.cast(dict[str, t.Any], reply)
    raise AssertionError(f"no {msg_type} reply")


def test_interrupt_reaches_a_cell_held_back_by_a_stalled_reader(ext_kernel: Frontend) -> None:
    ext_kernel.run(HELD_BACK)
    reader = RawIOPubReader(ext_kernel)
    try:
        msg_id = ext_kernel.kc.execute(ENDLESS_FLOOD.format(condition="True"), store_history=False)
        time.sleep(3)  # zmq, TCP and the kernel's backlog fill; the cell is held back
        start = time.monotonic()
        reply = _control_request(ext_kernel, "interrupt_request", {})
        assert reply["content"].get("status", "ok") == "ok"  # ipykernel 6.18 echoes the request
        reply = ext_kernel._shell_reply(msg_id, 10)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - start <= SLACK
    finally:
        reader.close()  # until the stall timeout, new output would wait for it
    ext_kernel.wait_idle(msg_id)
    assert ext_kernel.eval("i") > 100
    assert ext_kernel.kernel_info(timeout=5)["status"] == "ok"
    assert _stats(ext_kernel)["producer_waits"] >= 1


def test_interrupt_outside_a_wait_still_shows_the_error(ext_kernel: Frontend) -> None:
    """The interrupt lands in the cell's own code while another thread is held back.

    The cell's error (its traceback flush) and idle status must not wait for the
    stalled reader either: they went out only after the stall timeout (120 s here).
    """
    ext_kernel.run(HELD_BACK)
    reader = RawIOPubReader(ext_kernel)
    code = (
        "import comm, threading, time\n"
        "flood = comm.create_comm(target_name='flood')\n"
        "stop = threading.Event()\n"
        "def produce():\n"
        "    while not stop.is_set():\n"
        "        flood.send({'pad': 'x' * 1000})\n"
        "threading.Thread(target=produce, daemon=True).start()\n"
        "while True:\n"
        "    time.sleep(0.01)\n"
    )
    try:
        msg_id = ext_kernel.kc.execute(code, store_history=False)
        time.sleep(3)  # zmq, TCP and the kernel's backlog fill; the thread is held back
        start = time.monotonic()
        _control_request(ext_kernel, "interrupt_request", {})
        reply = ext_kernel._shell_reply(msg_id, 10)
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - start <= SLACK
    finally:
        reader.close()
    ext_kernel.wait_idle(msg_id)
    ext_kernel.run("stop.set()")
    assert _stats(ext_kernel)["producer_waits"] >= 1


def test_shutdown_request_works_while_a_cell_is_held_back(ext_kernel: Frontend) -> None:
    ext_kernel.run(HELD_BACK)
    reader = RawIOPubReader(ext_kernel)
    try:
        ext_kernel.kc.execute(ENDLESS_FLOOD.format(condition="i < 30_000"), store_history=False)
        time.sleep(3)
        reply = _control_request(ext_kernel, "shutdown_request", {"restart": False})
        assert reply["content"]["status"] == "ok"
        deadline = time.monotonic() + 20
        while ext_kernel.km.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not ext_kernel.km.is_alive(), "the kernel did not exit after shutdown_request"
    finally:
        reader.close()


def test_unload_restores_ipykernel_sending_and_socket_options(ext_kernel: Frontend) -> None:
    ext_kernel.run(ON_IOPUB_THREAD)
    assert ext_kernel.eval("iopub_state()") == (True, False, 10_000, True)
    # If NODROP stayed on after unloading, a stalled reader would hold a cell for 60 s.
    ext_kernel.run("%config KernelCommManager.iopub_stall_timeout = 60")
    ext_kernel.run("m = get_ipython().kernel.comm_manager\n%unload_ext kernel_comm_ext")
    assert ext_kernel.eval("iopub_state()") == (False, True, 1000, False)
    assert ext_kernel.eval("m.iopub_stats().state") == "off"
    cell = _flood(pad=PAD)
    work = _timed_reply(ext_kernel, cell)
    reader = RawIOPubReader(ext_kernel)
    try:
        assert _timed_reply(ext_kernel, cell) <= work + SLACK
    finally:
        reader.close()


def test_setting_turns_lossless_iopub_off_and_on(kernel: Frontend) -> None:
    kernel.run(ON_IOPUB_THREAD)
    kernel.run(
        "get_ipython().config.KernelCommManager.lossless_iopub = False\n%load_ext kernel_comm_ext"
    )
    assert kernel.eval(f"{STATS}.state") == "off"
    # ipykernel's socket; ``schedule`` is the extension's scheduler (iopub/scheduler.py).
    assert kernel.eval("iopub_state()") == (False, True, 1000, True)
    kernel.run("%config KernelCommManager.iopub_sndhwm = 5000")
    kernel.run("%config KernelCommManager.lossless_iopub = True")
    assert kernel.eval(f"{STATS}.state") == "lossless"
    assert kernel.eval("iopub_state()") == (True, False, 5000, True)
    kernel.run("%config KernelCommManager.lossless_iopub = False")
    assert kernel.eval("iopub_state()") == (False, True, 1000, True)
    kernel.run("%unload_ext kernel_comm_ext")
    assert kernel.eval("iopub_state()") == (False, True, 1000, False)


def test_a_frame_zmq_cannot_send_is_refused_before_any_frame_goes(ext_kernel: Frontend) -> None:
    ext_kernel.run(ON_IOPUB_THREAD)
    ext_kernel.run(
        "def refused():\n"
        "    try:\n"
        "        _th.socket.send_multipart([b'topic', b'part', object()])\n"
        "    except TypeError as e:\n"
        "        return str(e)\n"
    )
    assert "Frame 2" in ext_kernel.eval("on_iopub(refused)")
    # Nothing half-sent is left in the socket: the next messages arrive whole.
    assert ext_kernel.run("print('still fine')") == "still fine\n"


def test_what_waits_for_a_stalled_reader_stays_under_the_cap(ext_kernel: Frontend) -> None:
    """The backlog cap bounds the kernel's memory, however fast the cell produces.

    A cell sends 1 kB messages (from the kernel's main thread and from a thread
    of its own) to a reader that reads nothing; once zmq and TCP are full, what
    waits in the kernel must stop near the cap: never more than the cap plus
    one hand-off batch to the IOPub thread per sending thread.
    """
    cap = 100
    ext_kernel.run(HELD_BACK)
    reader = RawIOPubReader(ext_kernel)
    code = (
        "import comm, threading\n"
        "flood = comm.create_comm(target_name='flood')\n"
        "def produce(tag, n):\n"
        "    for i in range(n):\n"
        "        flood.send({'t': tag, 'i': i, 'pad': 'x' * 1000})\n"
        "worker = threading.Thread(target=produce, args=('thread', 5000))\n"
        "worker.start()\n"
        "produce('main', 20000)\n"
        "worker.join()\n"
    )
    try:
        msg_id = ext_kernel.kc.execute(code, store_history=False)
        time.sleep(5)  # zmq, TCP and the kernel's backlog fill; both producers are held back
    finally:
        reader.close()  # the cell goes on, and finishes
    ext_kernel._shell_reply(msg_id, 120)
    ext_kernel.wait_idle(msg_id)
    stats = _stats(ext_kernel)
    print(
        f"backlog cap {cap}: peak {stats['peak_backlog_messages']} messages,"
        f" producers held back {stats['producer_waits']} times"
    )
    assert stats["producer_waits"] >= 1
    # Each producer may have one batch queued past the cap, plus the message that
    # starts its next one; ipykernel's own few (status, stream) are never held back.
    bound = cap + 2 * (MAX_BATCH_MESSAGES + 1) + 5
    assert cap <= stats["peak_backlog_messages"] <= bound
