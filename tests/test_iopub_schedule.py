"""The IOPub thread's scheduler (iopub/scheduler.py): one wake-up for a burst, order kept.

Each end-to-end test holds a real kernel's IOPub thread in a callable of its own,
schedules more work behind it, and looks at ipykernel's queue and at what ran, in
order. The scheduler's unit tests against a fake IOPub thread are in
tests/unit/test_scheduler.py.
"""

from __future__ import annotations

from .frontend import Frontend

HOLD_IOPUB_THREAD = """
import threading
_th = get_ipython().kernel.iopub_thread
ran, release = [], threading.Event()
def settle():
    done = threading.Event()
    _th.schedule(done.set)
    assert done.wait(10), "the IOPub thread did not come back"
_th.schedule(lambda: release.wait(10))
"""
# Before the cell ends: its output waits for the IOPub thread too.
RELEASE = "queued = len(_th._events)\nrelease.set()\n"
BURST = """
for i in range({start}, {stop}):
    _th.schedule(lambda i=i: ran.append(i))
"""


def _burst(start: int, stop: int) -> str:
    return BURST.format(start=start, stop=stop)


def test_a_burst_of_work_takes_one_place_in_ipykernels_queue(ext_kernel: Frontend) -> None:
    ext_kernel.run(HOLD_IOPUB_THREAD + _burst(0, 200) + RELEASE)
    assert ext_kernel.eval("queued") <= 1
    ext_kernel.run("settle()")
    assert ext_kernel.eval("ran == list(range(200))")
    stats = ext_kernel.eval("get_ipython().kernel.comm_manager.iopub_stats().__dict__")
    assert stats["handed_off"] >= 200
    assert stats["wakeups"] < stats["handed_off"]


def test_switched_off_the_thread_is_woken_per_callable_as_ipykernel_does(
    kernel: Frontend,
) -> None:
    kernel.run(
        "get_ipython().config.KernelCommManager.batch_iopub_wakeups = False\n"
        "%load_ext kernel_comm_ext"
    )
    kernel.run(HOLD_IOPUB_THREAD + _burst(0, 200) + RELEASE)
    assert kernel.eval("queued") >= 200
    kernel.run("settle()")
    assert kernel.eval("ran == list(range(200))")
    kernel.run("%config KernelCommManager.batch_iopub_wakeups = True")
    assert "takes effect at %reload_ext kernel_comm_ext" in kernel.kernel_log()


def test_work_queued_before_unload_runs_before_work_scheduled_after(kernel: Frontend) -> None:
    # Lossless IOPub off: unloading it would wait for the IOPub thread held here.
    kernel.run(
        "get_ipython().config.KernelCommManager.lossless_iopub = False\n%load_ext kernel_comm_ext"
    )
    kernel.run(
        HOLD_IOPUB_THREAD
        + _burst(0, 100)
        + "get_ipython().run_line_magic('unload_ext', 'kernel_comm_ext')\n"
        + "unloaded = 'schedule' not in vars(_th)\n"
        + _burst(100, 200)
        + RELEASE
    )
    assert kernel.eval("unloaded")
    kernel.run("settle()")
    assert kernel.eval("ran == list(range(200))")


def test_a_failing_callable_is_logged_and_the_rest_still_runs(ext_kernel: Frontend) -> None:
    ext_kernel.run(
        HOLD_IOPUB_THREAD
        + "_th.schedule(lambda: 1 / 0)\n"
        + _burst(0, 10)
        + "release.set()\nsettle()"
    )
    assert ext_kernel.eval("ran == list(range(10))")
    log = ext_kernel.kernel_log()
    assert "a callable on the IOPub thread failed" in log
    assert "ZeroDivisionError" in log
    assert ext_kernel.run("print('still serving')") == "still serving\n"
