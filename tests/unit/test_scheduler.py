"""IOPubScheduler (iopub/scheduler.py) on a fake IOPub thread: one wake-up per burst, in order."""

from __future__ import annotations

import collections
import functools
import logging
import threading
import typing as t

import pytest

from kernel_comm_ext.iopub.scheduler import IOPubScheduler

Action = t.Callable[[], object]
LOG = logging.getLogger("kernel_comm_ext")


class FakeIOPubThread:
    """ipykernel's IOPubThread as far as the scheduler sees it: a queue it wakes per callable."""

    def __init__(self) -> None:
        self.thread: threading.Thread = threading.current_thread()
        self._events: collections.deque[Action] = collections.deque()

    def schedule(self, action: Action) -> None:
        self._events.append(action)

    def run_once(self) -> int:
        """One wake-up of the thread: run what is queued now; how many callables ran."""
        ran = 0
        for _ in range(len(self._events)):
            self._events.popleft()()
            ran += 1
        return ran


class DeadThread:
    def is_alive(self) -> bool:
        return False


@pytest.fixture
def iopub_thread() -> FakeIOPubThread:
    return FakeIOPubThread()


def _scheduler(iopub_thread: t.Any, batch_wakeups: bool = True) -> IOPubScheduler:
    scheduler = IOPubScheduler(iopub_thread, batch_wakeups=batch_wakeups, log=LOG)
    scheduler.start()
    return scheduler


def test_a_burst_takes_one_place_in_ipykernels_queue(iopub_thread: FakeIOPubThread) -> None:
    scheduler = _scheduler(iopub_thread)
    ran: list[int] = []
    for i in range(100):
        iopub_thread.schedule(functools.partial(ran.append, i))
    assert len(iopub_thread._events) == 1
    iopub_thread.run_once()
    assert ran == list(range(100))
    assert (scheduler.scheduled, scheduler.wakeups) == (100, 1)


def test_work_scheduled_while_running_runs_in_the_same_wakeup(
    iopub_thread: FakeIOPubThread,
) -> None:
    scheduler = _scheduler(iopub_thread)
    ran: list[str] = []
    iopub_thread.schedule(lambda: iopub_thread.schedule(lambda: ran.append("second")))
    iopub_thread.run_once()
    assert ran == ["second"]
    assert scheduler.wakeups == 1


def test_the_next_burst_wakes_the_thread_again(iopub_thread: FakeIOPubThread) -> None:
    scheduler = _scheduler(iopub_thread)
    iopub_thread.schedule(lambda: None)
    iopub_thread.run_once()
    iopub_thread.schedule(lambda: None)
    assert len(iopub_thread._events) == 1
    assert scheduler.wakeups == 2


def test_switched_off_each_callable_wakes_the_thread(iopub_thread: FakeIOPubThread) -> None:
    scheduler = _scheduler(iopub_thread, batch_wakeups=False)
    for _ in range(5):
        iopub_thread.schedule(lambda: None)
    assert len(iopub_thread._events) == 5
    assert scheduler.hand_off_queue is iopub_thread._events


def test_batching_hands_off_through_its_own_queue(iopub_thread: FakeIOPubThread) -> None:
    scheduler = _scheduler(iopub_thread)
    assert scheduler.hand_off_queue is not iopub_thread._events


def test_the_gate_runs_before_each_callable_is_queued(iopub_thread: FakeIOPubThread) -> None:
    scheduler = _scheduler(iopub_thread)
    seen: list[str] = []
    scheduler.gate = lambda: seen.append("gate")
    iopub_thread.schedule(lambda: seen.append("work"))
    iopub_thread.run_once()
    assert seen == ["gate", "work"]


def test_an_interrupted_gate_still_queues_the_callable(iopub_thread: FakeIOPubThread) -> None:
    scheduler = _scheduler(iopub_thread)

    def interrupted() -> None:
        raise KeyboardInterrupt

    scheduler.gate = interrupted
    ran: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        iopub_thread.schedule(lambda: ran.append(1))
    iopub_thread.run_once()
    assert ran == [1]


def test_enqueue_passes_by_the_gate(iopub_thread: FakeIOPubThread) -> None:
    scheduler = _scheduler(iopub_thread)
    scheduler.gate = lambda: pytest.fail("the gate must not run")
    ran: list[int] = []
    scheduler.enqueue(lambda: ran.append(1))
    iopub_thread.run_once()
    assert ran == [1]


def test_a_failing_callable_is_logged_and_the_rest_runs(
    iopub_thread: FakeIOPubThread, caplog: pytest.LogCaptureFixture
) -> None:
    _scheduler(iopub_thread)
    ran: list[int] = []
    iopub_thread.schedule(lambda: 1 / 0)
    iopub_thread.schedule(lambda: ran.append(1))
    with caplog.at_level(logging.ERROR, logger="kernel_comm_ext"):
        iopub_thread.run_once()
    assert ran == [1]
    assert "a callable on the IOPub thread failed" in caplog.text


def test_stop_gives_schedule_back_and_keeps_the_order(iopub_thread: FakeIOPubThread) -> None:
    scheduler = _scheduler(iopub_thread)
    ran: list[int] = []
    for i in range(3):
        iopub_thread.schedule(functools.partial(ran.append, i))
    scheduler.stop()
    assert "schedule" not in vars(iopub_thread)
    iopub_thread.schedule(lambda: ran.append(3))
    iopub_thread.run_once()
    assert ran == [0, 1, 2, 3]
    assert not scheduler.active


def test_stop_puts_back_a_schedule_someone_set_before(iopub_thread: FakeIOPubThread) -> None:
    wrapped: list[Action] = []
    vars(iopub_thread)["schedule"] = wrapped.append  # as a wrapper of ipykernel would
    scheduler = _scheduler(iopub_thread)
    iopub_thread.schedule(lambda: None)
    assert len(wrapped) == 1, "the wake-up goes through the earlier wrapper"
    scheduler.stop()
    assert iopub_thread.schedule == wrapped.append


def test_a_stopped_iopub_thread_runs_the_callable_here(iopub_thread: FakeIOPubThread) -> None:
    scheduler = _scheduler(iopub_thread)
    scheduler._runner = DeadThread()  # type: ignore[assignment]
    ran: list[int] = []
    iopub_thread.schedule(lambda: ran.append(1))
    assert ran == [1]


class _InterruptedOnce:
    """An IOPub thread stand-in whose ``schedule`` is interrupted once, as by Ctrl-C."""

    def __init__(self) -> None:
        self.thread = threading.current_thread()
        self.events: list[t.Callable[[], object]] = []
        self.interrupt = True

    def schedule(self, action: t.Callable[[], object]) -> None:
        if self.interrupt:
            self.interrupt = False
            raise KeyboardInterrupt
        self.events.append(action)


def test_an_interrupted_wakeup_is_retried_by_the_next_call() -> None:
    iopub_thread = _InterruptedOnce()
    scheduler = IOPubScheduler(iopub_thread, batch_wakeups=True, log=LOG)
    scheduler.start()
    ran: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        iopub_thread.schedule(lambda: ran.append(1))
    iopub_thread.schedule(lambda: ran.append(2))
    assert len(iopub_thread.events) == 1, "the second call must wake the thread again"
    iopub_thread.events.pop()()
    assert ran == [1, 2]
    scheduler.stop()
    assert "schedule" not in vars(iopub_thread)
