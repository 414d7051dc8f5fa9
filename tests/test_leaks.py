"""No leaks: 50,000 open/close cycles leave nothing behind.

Half the comms are opened and closed by the frontend (sent in batches, one
barrier per batch), half by a kernel thread (paced by the test frontend, see
``helpers.Pacer``). Afterwards the registry is as before, no closed comm is
reachable (every comm was tracked with a weak reference), and the kernel's
memory growth is printed. Most of that growth is jupyter_client's
``Session.digest_history``: the kernel keeps the signature of every message it
receives (up to 65,536) to refuse replays.
"""

from __future__ import annotations

import time
import uuid

import pytest

from .frontend import Frontend
from .helpers import Pacer, barrier, our_unexpected_tracebacks, report, settle_iopub

CYCLES = 50_000
BATCH = 1_000

SETUP = """
import comm, gc, os, threading, weakref
manager = get_ipython().kernel.comm_manager
alive = weakref.WeakSet()
from kernel_comm_ext import KernelComm

def track(c, msg):
    alive.add(c)

manager.register_target("leak", track)

def kernel_cycles(count):
    for _ in range(count):
        pace()
        c = comm.create_comm(target_name="leak-kernel", data={})
        alive.add(c)
        pace()
        c.close()

def memory():
    gc.collect()
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE"), len(gc.get_objects())
"""


def _frontend_cycles(fe: Frontend, count: int) -> None:
    """Open and close ``count`` comms from the frontend, in batches without waiting."""
    for start in range(0, count, BATCH):
        ids = [uuid.uuid4().hex for _ in range(min(BATCH, count - start))]
        for comm_id in ids:
            fe.send_shell(
                "comm_open", {"comm_id": comm_id, "target_name": "leak", "data": {}}, wait=False
            )
        for comm_id in ids:
            fe.send_shell("comm_close", {"comm_id": comm_id, "data": {}}, wait=False)
        barrier(fe)


def _kernel_cycles(fe: Frontend, pacer: Pacer, count: int) -> None:
    """Open and close ``count`` comms from a kernel thread."""
    mark = fe.mark()
    fe.run(f"worker = threading.Thread(target=kernel_cycles, args=({count},)); worker.start()")
    pacer.collect(
        2 * count,
        lambda m: (
            m["msg_type"] in ("comm_open", "comm_close")
            and m["content"].get("target_name", "leak-kernel") == "leak-kernel"
        ),
        since=mark,
        timeout=300,
    )
    fe.run("worker.join()")


def test_open_close_cycles_leave_nothing_behind(
    ext_kernel: Frontend, capsys: pytest.CaptureFixture[str]
) -> None:
    fe = ext_kernel
    pacer = Pacer(fe)
    fe.run(SETUP)
    registry_before = fe.eval("sorted(manager.comms)")
    # Warm up (caches, interned strings, first allocations), then measure.
    _frontend_cycles(fe, BATCH)
    _kernel_cycles(fe, pacer, BATCH // 2)
    settle_iopub(fe)
    rss_before, objects_before = fe.eval("memory()")

    started = time.perf_counter()
    _frontend_cycles(fe, CYCLES // 2)
    frontend_done = time.perf_counter()
    _kernel_cycles(fe, pacer, CYCLES // 2)
    kernel_done = time.perf_counter()
    settle_iopub(fe)

    rss_after, objects_after = fe.eval("memory()")
    report(
        capsys,
        f"leaks: {CYCLES // 2} frontend cycles in {frontend_done - started:.1f} s,"
        f" {CYCLES // 2} kernel cycles in {kernel_done - frontend_done:.1f} s;"
        f" kernel RSS {rss_before / 2**20:.1f} -> {rss_after / 2**20:.1f} MiB"
        f" ({(rss_after - rss_before) / 2**20:+.1f} MiB),"
        f" gc objects {objects_before} -> {objects_after} ({objects_after - objects_before:+d})",
    )
    assert fe.eval("sorted(manager.comms)") == registry_before
    assert fe.eval("len(alive)") == 0, "closed comms are still reachable"
    assert fe.eval("sum(isinstance(o, KernelComm) for o in gc.get_objects())") == len(
        registry_before
    )
    # A leak of one object per cycle would show here; the weak references above name it.
    assert objects_after - objects_before < CYCLES // 10
    assert our_unexpected_tracebacks(fe.kernel_log()) == []
