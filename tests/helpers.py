"""Helpers shared by the hardening tests: an echo target, log reading, barriers, pacing.

Every helper speaks to a real kernel through a ``Frontend``; none of them mocks anything.
"""

from __future__ import annotations

import os
import time
import typing as t
import uuid
from pathlib import Path

from .frontend import Frontend, KernelError

# Run in the kernel: an ``echo`` target (sync) and an ``async_echo`` one whose
# callbacks are coroutines; both send back each message's data and buffers.
ECHO_TARGETS = """
import asyncio, comm
_kernel = get_ipython().kernel
echo_opened = []

def echo(c, msg):
    echo_opened.append(c.comm_id)
    c.on_msg(lambda m: c.send({"echo": m["content"]["data"]}, buffers=m["buffers"]))

async def async_echo(c, msg):
    echo_opened.append(c.comm_id)
    async def on_msg(m):
        await asyncio.sleep(0)
        c.send({"echo": m["content"]["data"]}, buffers=m["buffers"])
    c.on_msg(on_msg)

comm.get_comm_manager().register_target("echo", echo)
comm.get_comm_manager().register_target("async_echo", async_echo)
"""

# The exception class deliberately raised by test callbacks; tracebacks that
# end in it are expected in the kernel's log.
DELIBERATE = "DeliberateError"
DEFINE_DELIBERATE = f"class {DELIBERATE}(Exception): pass\n"

REGISTRY = "sorted(get_ipython().kernel.comm_manager.comms)"


class Recorder:
    """A real, importable module that leaves a marker file when it is imported."""

    def __init__(self, directory: Path) -> None:
        self.name = f"hardening_recorder_{uuid.uuid4().hex[:8]}"
        self.marker = directory / f"{self.name}.imported"
        self.path = directory / "modules"
        self.path.mkdir(exist_ok=True)
        (self.path / f"{self.name}.py").write_text(
            f"open({str(self.marker)!r}, 'w').write('imported')\n"
            "def target(comm, msg):\n    comm.send({'from': 'module target'})\n"
        )

    def env(self) -> dict[str, str]:
        """Environment for a kernel that can import the module."""
        paths = [str(self.path), os.environ.get("PYTHONPATH", "")]
        return {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def report(capsys: t.Any, line: str) -> None:
    """Print a figure into pytest's output even when the test passes (no ``-s`` needed)."""
    with capsys.disabled():
        print(f"\n{line}", flush=True)


def supports_subshells(fe: Frontend) -> bool:
    """Whether the kernel announces ipykernel 7's kernel subshells."""
    return "kernel subshells" in fe.kernel_info().get("supported_features", [])


def barrier(fe: Frontend, timeout: float = 60.0) -> None:
    """Return once the kernel has handled every shell message sent before (shell is in order)."""
    content = fe.kernel_info(timeout=timeout)
    assert content["status"] == "ok", content


def settle_iopub(fe: Frontend, timeout: float = 60.0) -> None:
    """Wait until IOPub flows again after a burst (an idle status of a fresh request arrives).

    After thousands of messages sent without waiting, status messages of
    earlier requests may have been dropped by ipykernel's IOPub high-water
    mark; a fresh request whose idle status arrives proves the queue drained.
    """
    deadline = time.monotonic() + timeout
    while True:
        msg_id = fe.kc.kernel_info()
        try:
            fe.wait_idle(msg_id, timeout=2.0)
            return
        except KernelError:
            if time.monotonic() > deadline:
                raise


def assert_echoes(fe: Frontend, comm_id: str, payload: object = None) -> None:
    """The comm ``comm_id`` (opened on an echo target) sends back what it gets."""
    payload = payload if payload is not None else uuid.uuid4().hex
    mark = fe.mark()
    fe.send_comm(comm_id, {"ping": payload}, wait=False)
    echoed = fe.wait_for(
        "comm_msg",
        comm_id=comm_id,
        since=mark,
        predicate=lambda m: m["content"]["data"] == {"echo": {"ping": payload}},
    )
    assert echoed, f"comm {comm_id} did not echo"


class KernelLog:
    """Reads a kernel's log piece by piece: ``new()`` returns what was written since last time."""

    def __init__(self, fe: Frontend) -> None:
        self.fe = fe
        self.offset = len(fe.kernel_log())

    def new(self) -> str:
        """Log text written since the previous call."""
        text = self.fe.kernel_log()
        piece, self.offset = text[self.offset :], len(text)
        return piece


def tracebacks(log: str) -> list[str]:
    """Every Python traceback in a log text, chained ones ("During handling...") joined."""
    blocks: list[str] = []
    current: list[str] | None = None
    in_frames = chained = False
    for line in log.splitlines():
        if line.startswith("Traceback (most recent call last):"):
            if current is not None and not chained:
                blocks.append("\n".join(current))
                current = None
            current = [*(current or []), line]
            in_frames, chained = True, False
        elif current is None:
            continue
        elif in_frames:
            current.append(line)
            # The first unindented line is the exception itself.
            in_frames = not line or line.startswith((" ", "\t"))
        elif line.startswith(("During handling", "The above exception")):
            current.append(line)
            chained = True
        elif line.strip():
            blocks.append("\n".join(current))
            current, chained = None, False
    if current is not None:
        blocks.append("\n".join(current))
    return blocks


def our_unexpected_tracebacks(log: str) -> list[str]:
    """Tracebacks through this package's code that do not end in a deliberate test error."""
    return [
        block
        for block in tracebacks(log)
        if "kernel_comm_ext" in block and DELIBERATE not in block.splitlines()[-1]
    ]


class Pacer:
    """Flow control for kernel code that sends thousands of comm messages from threads.

    ipykernel's IOPub socket drops messages past its high-water mark (1,000
    queued per subscriber) when a burst outruns the frontend. Until lossless
    IOPub lands, kernel senders take a credit before each message
    (``pace()`` in the kernel) and the test returns credits as it receives
    messages, so at most ``window`` messages are in flight.
    """

    KERNEL_CODE = """
import threading, comm
_credits = threading.Semaphore({window})
def pace():
    _credits.acquire()
def _return_credits(c, msg):
    c.on_msg(lambda m: _credits.release(m["content"]["data"]["n"]))
comm.get_comm_manager().register_target("hardening.credits", _return_credits)
"""

    def __init__(self, fe: Frontend, window: int = 400, batch: int = 100) -> None:
        self.fe = fe
        self.batch = batch
        fe.run(self.KERNEL_CODE.format(window=window))
        self.comm_id = fe.open_comm("hardening.credits")

    def collect(
        self,
        expected: int,
        predicate: t.Callable[[dict[str, t.Any]], bool],
        since: int,
        timeout: float = 120.0,
    ) -> list[dict[str, t.Any]]:
        """Receive ``expected`` IOPub messages matching ``predicate``, returning credits."""
        got: list[dict[str, t.Any]] = []
        owed = 0
        position = since
        deadline = time.monotonic() + timeout
        while len(got) < expected:
            if time.monotonic() > deadline:
                raise KernelError(f"received {len(got)} of {expected} paced messages")
            new = self.fe.iopub(since=position)
            if not new:
                time.sleep(0.005)
                continue
            position += len(new)
            matched = [m for m in new if predicate(m)]
            got.extend(matched)
            owed += len(matched)
            if owed >= self.batch:
                self.fe.send_comm(self.comm_id, {"n": owed}, wait=False)
                owed = 0
        if owed:
            self.fe.send_comm(self.comm_id, {"n": owed}, wait=False)
        return got


def collection_storm(make_comm: str) -> str:
    """Kernel code: comms found by the garbage collector at any allocation, while a widget updates.

    3,000 updates of the kernel's slider ``s``; every tenth makes a comm with
    the expression ``make_comm``, unregisters it and leaves it held only by a
    reference cycle. With the collector's threshold at 5, those cycles are
    collected at any allocation, also while the sender holds its locks. The
    300 ids are in ``doomed``; the code ends once every cycle is gone.
    """
    return (
        "import gc, time\n"
        "doomed = []\n"
        "class Cycle:\n"
        "    def __init__(self):\n"
        "        self.me = self\n"
        f"        self.comm = {make_comm}\n"
        "        doomed.append(self.comm.comm_id)\n"
        "        get_ipython().kernel.comm_manager.unregister_comm(self.comm)\n"
        "old = gc.get_threshold()\n"
        "gc.set_threshold(5)\n"
        "try:\n"
        "    for i in range(3000):\n"
        "        s.value = i\n"
        "        if i % 10 == 0:\n"
        "            Cycle()\n"
        "finally:\n"
        "    gc.set_threshold(*old)\n"
        # A collection running in another thread makes gc.collect() return at
        # once, leaving younger cycles for later: collect until all are gone.
        "for _ in range(200):\n"
        "    gc.collect()\n"
        "    if not any(isinstance(o, Cycle) for o in gc.get_objects()):\n"
        "        break\n"
        "    time.sleep(0.01)\n"
    )


def comm_magic(fe: Frontend, line: str = "") -> str:
    """What ``%comm <line>`` shows in a terminal: what it printed, then its result's text/plain."""
    execution = fe.execute(f"%comm {line}".rstrip())
    results = [m for m in execution.iopub if m["msg_type"] == "execute_result"]
    text = results[0]["content"]["data"]["text/plain"] + "\n" if results else ""
    return execution.stdout + text
