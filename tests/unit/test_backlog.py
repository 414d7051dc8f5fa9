"""Backlog (iopub/backlog.py): counting, caps, and holding a sender back."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from kernel_comm_ext.iopub import backlog as backlog_module
from kernel_comm_ext.iopub.backlog import Backlog, frames_nbytes


def test_counts_what_waits_at_the_socket_and_in_the_queue() -> None:
    backlog = Backlog(max_messages=10, max_bytes=1000)
    backlog.add(2, 100)
    backlog.count_queued(3, 50)
    assert (backlog.waiting_messages, backlog.waiting_bytes) == (5, 150)
    backlog.remove(1, 40)
    backlog.count_taken(3, 50)
    assert (backlog.waiting_messages, backlog.waiting_bytes) == (1, 60)
    assert (backlog.peak_messages, backlog.peak_bytes) == (5, 150)


@pytest.mark.parametrize(
    ("messages", "nbytes", "full"),
    [(9, 999, False), (10, 0, True), (0, 1000, True)],
)
def test_full_at_either_cap(messages: int, nbytes: int, full: bool) -> None:
    backlog = Backlog(max_messages=10, max_bytes=1000)
    backlog.add(messages, nbytes)
    assert backlog.full() is full


def test_a_zero_cap_is_no_cap() -> None:
    backlog = Backlog(max_messages=0, max_bytes=0)
    backlog.add(10**9, 10**12)
    assert not backlog.full()


def test_queued_messages_count_toward_the_cap() -> None:
    backlog = Backlog(max_messages=4, max_bytes=0)
    backlog.add(2, 0)
    backlog.count_queued(2, 0)
    assert backlog.full()


def test_not_full_never_waits() -> None:
    backlog = Backlog(max_messages=10, max_bytes=0)
    backlog.wait_for_room(lambda: True, patience=60)
    assert backlog.producer_waits == 0


def test_a_sender_that_may_not_wait_is_not_held() -> None:
    backlog = Backlog(max_messages=1, max_bytes=0)
    backlog.add(1, 0)
    backlog.wait_for_room(lambda: False, patience=60)
    assert backlog.producer_waits == 0


def test_a_held_sender_goes_on_once_messages_leave() -> None:
    backlog = Backlog(max_messages=1, max_bytes=0)
    backlog.add(1, 0)
    timer = threading.Timer(0.05, backlog.remove, (1, 0))
    timer.start()
    try:
        backlog.wait_for_room(lambda: True, patience=60)
    finally:
        timer.join()
    assert not backlog.full()
    assert backlog.producer_waits == 1
    assert backlog.gave_up == 0


def test_raising_the_cap_releases_a_held_sender() -> None:
    backlog = Backlog(max_messages=1, max_bytes=0)
    backlog.add(1, 0)
    timer = threading.Timer(0.05, backlog.set_caps, (0, 0))
    timer.start()
    try:
        backlog.wait_for_room(lambda: True, patience=60)
    finally:
        timer.join()
    assert backlog.gave_up == 0


def test_a_sender_gives_up_when_nothing_leaves_for_the_patience() -> None:
    backlog = Backlog(max_messages=1, max_bytes=0)
    backlog.add(1, 0)
    start = time.monotonic()
    backlog.wait_for_room(lambda: True, patience=0.2)
    assert backlog.gave_up == 1
    assert 0.2 <= time.monotonic() - start < 5


def test_an_interrupted_wait_grants_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    backlog = Backlog(max_messages=1, max_bytes=0)
    backlog.add(1, 0)
    calls = []

    def interrupted() -> bool:
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return True

    with pytest.raises(KeyboardInterrupt):
        backlog.wait_for_room(interrupted, patience=60)
    # Within the grace, nobody is held back, even while full.
    backlog.wait_for_room(lambda: True, patience=60)
    assert backlog.producer_waits == 1
    # After it, senders are held again (a clock past the grace, a second per reading).
    later = itertools.count(time.monotonic() + backlog_module.INTERRUPT_GRACE + 1)
    monkeypatch.setattr(time, "monotonic", lambda: float(next(later)))
    backlog.wait_for_room(lambda: True, patience=2)
    assert backlog.producer_waits == 2
    assert backlog.gave_up == 1


def test_frames_nbytes_counts_every_kind_of_buffer() -> None:
    frames = [b"abc", memoryview(b"defg"), bytearray(5), "not a buffer"]
    assert frames_nbytes(frames) == 3 + 4 + 5
