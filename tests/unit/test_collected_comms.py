"""Comms collected by the garbage collector inside any lock cannot deadlock the kernel.

A finalizer (``BaseComm.__del__``) runs wherever the garbage collector happens
to run: on any thread, inside any lock that thread holds. Here every lock of
the sender, the comm registry, the close-once check and the IOPub batch is
replaced by one that, each time it is taken, has garbage holding open comms
collected, on the same thread and on another one while the lock is held. The
traffic through them (fast path, credit, queue, merges, custom messages,
registered comms opened and closed, flushes, the background thread) must
finish, and every collected comm must be closed. The garbage holds comms of
both kinds the sender sends for: this package's ``KernelComm`` and ipykernel's
own comm class (routed through the sender while installed).
"""

from __future__ import annotations

import collections
import gc
import threading
import types
import typing as t

import pytest
from ipykernel.comm.comm import BaseComm as IPykernelBaseComm

from kernel_comm_ext.delivery import sender as sender_module
from kernel_comm_ext.delivery.sender import CommSender
from kernel_comm_ext.iopub import wire
from kernel_comm_ext.iopub.wire import IOPubBatch
from kernel_comm_ext.kernel.comm import KernelComm
from kernel_comm_ext.kernel.ipykernel_comms import IPykernelComms
from kernel_comm_ext.protocol import comm as comm_module
from kernel_comm_ext.protocol import manager as manager_module
from kernel_comm_ext.protocol.manager import CommManager

from .sender_fakes import FakeKernel, ModelFrontend, ScriptedBudget, custom, update, widget

# A helper thread that cannot finish its collection within this is stuck on a lock.
STUCK_AFTER = 2.0


class Collector:
    """Makes garbage that holds open comms, and collects it on demand."""

    def __init__(self) -> None:
        self.kernel: FakeKernel | None = None
        self.sender: t.Any = None
        self.doomed: list[str] = []
        self.stuck: list[str] = []
        self.triggers = 0
        self._local = threading.local()

    def collect_inside(self, lock_name: str, other_thread: bool) -> None:
        """Collect a fresh cycle holding an open comm, here or on another thread."""
        if self.sender is None or getattr(self._local, "busy", False):
            return
        self._local.busy = True
        try:
            self.triggers += 1
            self._garbage()
            if not other_thread:
                gc.collect()
                return
            helper = threading.Thread(target=gc.collect, daemon=True)
            helper.start()
            helper.join(STUCK_AFTER)
            if helper.is_alive():
                self.stuck.append(lock_name)
        finally:
            self._local.busy = False

    def _garbage(self) -> None:
        comm = KernelComm(kernel=self.kernel, sender=self.sender, primary=False, target_name="gc")
        ipykernel_comm: t.Any = IPykernelBaseComm(primary=False, target_name="gc")  # type: ignore[no-untyped-call]
        ipykernel_comm.kernel = self.kernel
        cycle: dict[str, t.Any] = {"comm": comm, "ipykernel comm": ipykernel_comm}
        cycle["me"] = cycle
        self.doomed += [comm.comm_id, ipykernel_comm.comm_id]


class CollectingLock:
    """A lock that has garbage collected each time it is taken (some of the times)."""

    def __init__(self, inner: t.Any, name: str, collector: Collector) -> None:
        self._inner = inner
        self._name = name
        self._collector = collector
        self._taken = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = bool(self._inner.acquire(blocking, timeout))
        if got:
            self._taken += 1
            n = self._taken
            if n <= 6 or (n % 40 == 0 and n <= 800):
                self._collector.collect_inside(self._name, other_thread=n % 2 == 0)
        return got

    def release(self) -> None:
        self._inner.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __getattr__(self, name: str) -> t.Any:
        # Condition uses an RLock's _is_owned/_release_save/_acquire_restore.
        return getattr(self._inner, name)


def _threading_with_collecting_locks(collector: Collector, where: str) -> types.ModuleType:
    """A stand-in for the ``threading`` module whose Lock and RLock collect garbage."""
    fake = types.ModuleType("threading")
    fake.__dict__.update(threading.__dict__)
    fake.Lock = lambda: CollectingLock(threading.Lock(), f"{where} Lock", collector)  # type: ignore[attr-defined]
    fake.RLock = lambda: CollectingLock(threading.RLock(), f"{where} RLock", collector)  # type: ignore[attr-defined]
    return fake


class FakeIOThread:
    """What IOPubBatch uses of ipykernel's IOPub thread; runs what is scheduled at once."""

    def __init__(self, socket: t.Any) -> None:
        self._events: collections.deque[t.Any] = collections.deque()
        self.thread = threading.main_thread()
        self._socket = socket

    def _really_send(self, frames: list[t.Any], copy: bool = True) -> None:
        self._socket.send_multipart(frames, copy=copy)

    def schedule(self, f: t.Callable[[], None]) -> None:
        self._events.append(f)
        while self._events:
            self._events.popleft()()


@pytest.mark.timeout(120)
def test_collecting_comms_inside_every_lock_cannot_deadlock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collector = Collector()
    for module, where in [
        (sender_module, "sender"),
        (manager_module, "registry"),
        (wire, "IOPub batch"),
    ]:
        monkeypatch.setattr(module, "threading", _threading_with_collecting_locks(collector, where))
    monkeypatch.setattr(
        comm_module,
        "_close_lock",
        CollectingLock(threading.Lock(), "close-once", collector),
    )
    kernel = FakeKernel()
    socket = kernel.iopub_socket
    manager = CommManager()
    sender = CommSender(kernel, 1000.0)
    sender.iopub_socket = IOPubBatch(socket, FakeIOThread(socket))
    sender._budget = ScriptedBudget((True, False, False), (True, False))  # type: ignore[assignment]
    slider = widget(kernel, sender, "@jupyter-widgets/controls", "IntSliderModel")
    figure = widget(kernel, sender, "jupyterlab-plotly", "FigureModel")
    routing = IPykernelComms(kernel, sender)
    assert routing.install()
    collector.kernel, collector.sender = kernel, sender
    errors: list[BaseException] = []

    def traffic() -> None:
        try:
            for i in range(300):
                update(slider, value=i)
                update(figure, x=i)
                update(figure, x=None)
                if i % 10 == 0:
                    custom(slider, i)
                if i % 7 == 0:
                    registered = KernelComm(kernel=kernel, sender=sender, primary=False)
                    manager.register_comm(registered)
                    registered.close()
                if i % 50 == 0:
                    sender.flush()
            sender.flush()
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    worker.join(30)
    collector.sender = None  # no more garbage from here on
    assert not worker.is_alive(), "deadlocked: the traffic did not finish"
    assert errors == []
    assert collector.stuck == [], "a collection on another thread waited for a held lock"
    assert collector.triggers > 30
    page = ModelFrontend(kernel)  # one page: each message is applied (and verified) once
    for _ in range(50):  # collections racing with the background thread's may be deferred
        gc.collect()
        sender.flush()
        page.apply()
        if set(collector.doomed) <= page.closed:
            break
    assert set(collector.doomed) <= page.closed, "a collected comm was never closed"
    assert page.state[slider.comm_id]["value"] == 299
    # Only now: garbage still uncollected would otherwise get ipykernel's finalizer.
    routing.uninstall()
    sender.close()
