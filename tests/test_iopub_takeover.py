"""The takeover of the IOPub thread starts whole or not at all (iopub/takeover.py).

Lossless IOPub is applied on the IOPub thread. Each test holds a real kernel's
IOPub thread busy in a callable of its own while the extension loads, so the
change is not taken in time; once the thread is free again, the kernel must be
either fully taken over or not at all, never lossless with nothing counting
comm messages in the backlog.
"""

from __future__ import annotations

from .frontend import Frontend

# A hand-off time shorter than the hold, so loading gives up while the thread is busy.
HOLD_WHILE_LOADING = """
import threading
import kernel_comm_ext.iopub.lossless as _lossless
_lossless.APPLY_TIMEOUT = 1.0
_th = get_ipython().kernel.iopub_thread
_release = threading.Event()
_th.schedule(lambda: _release.wait(30))
get_ipython().run_line_magic('load_ext', 'kernel_comm_ext')
_release.set()
"""

SETTLE = """
_done = threading.Event()
_th.schedule(_done.set)
assert _done.wait(10), "the IOPub thread did not come back"
"""

STATE = """
from kernel_comm_ext.iopub.socket import LosslessSocket
_m = get_ipython().kernel.comm_manager
_batch = _m.sender.iopub_socket
_state = {
    "socket_wrapped": isinstance(_th.socket, LosslessSocket),
    "schedule_replaced": "schedule" in vars(_th),
    "gate_set": any(
        getattr(s, "gate", None) is not None for s in [getattr(_th.schedule, "__self__", None)]
    ),
    "backlog_counted": _batch.backlog is not None,
    "stats": _m.iopub_stats().__dict__,
}
"""


def _state_after_settling(fe: Frontend) -> dict[str, object]:
    fe.run(SETTLE)
    fe.run(STATE)
    state = fe.eval("_state")
    assert isinstance(state, dict)
    return state


def test_a_busy_iopub_thread_at_load_leaves_ipykernels_sending_whole(kernel: Frontend) -> None:
    kernel.run(HOLD_WHILE_LOADING)
    state = _state_after_settling(kernel)
    # The hand-off was called off: nothing of it happens when the thread gets to it.
    assert state["socket_wrapped"] is False
    assert state["gate_set"] is False
    assert state["schedule_replaced"] is False
    assert state["backlog_counted"] is False
    stats = state["stats"]
    assert isinstance(stats, dict)
    assert stats["state"] == "off"
    assert "did not take the change in time" in str(stats["reason"])
    assert "ipykernel keeps its own IOPub sending" in kernel.kernel_log()
    # Comms still work, on ipykernel's own IOPub sending.
    assert kernel.run("print('still serving')") == "still serving\n"


def test_a_reload_after_a_busy_start_takes_over_whole(kernel: Frontend) -> None:
    kernel.run(HOLD_WHILE_LOADING)
    kernel.run(SETTLE)
    kernel.run("%reload_ext kernel_comm_ext")
    state = _state_after_settling(kernel)
    assert state["socket_wrapped"] is True
    assert state["gate_set"] is True
    assert state["schedule_replaced"] is True
    assert state["backlog_counted"] is True
    stats = state["stats"]
    assert isinstance(stats, dict)
    assert stats["state"] == "lossless"
    assert stats["reason"] is None
