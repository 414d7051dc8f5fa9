"""Backlog: what waits in the kernel for IOPub readers, and the cap that holds senders back."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import typing as t
import weakref

# How often a held-back sender re-checks the backlog even without a wake-up.
# The wait is on the calling thread, so a short slice keeps it responsive to
# KeyboardInterrupt (kernel interrupts) and to the channel falling back.
WAIT_SLICE = 0.1

# After a held-back sender is interrupted (KeyboardInterrupt: the user stopped
# the cell), senders are not held back for this long, so the cell's error and
# the kernel's idle status are queued (in order) and the kernel answers again.
INTERRUPT_GRACE = 2.0


def frames_nbytes(frames: t.Iterable[t.Any]) -> int:
    """Bytes in the frames of one zmq message (bytes, memoryviews, arrays, zmq.Frame)."""
    total = 0
    for frame in frames:
        if type(frame) is bytes:
            total += len(frame)
        else:
            with contextlib.suppress(TypeError):  # not a buffer: zmq refuses it later
                total += memoryview(frame).nbytes
    return total


class Backlog:
    """Messages (and their bytes) waiting in the kernel for a slow IOPub reader, with caps.

    The IOPub thread counts messages in when a reader has no room for them and
    out when they leave. Comm messages handed to the IOPub thread but not yet
    taken by it count too (``count_queued``/``count_taken``): a thread that produces while
    the IOPub thread waits for the interpreter lock would otherwise queue far
    past the cap. While either figure is at its cap (0: no cap),
    ``wait_for_room`` holds the calling thread, so a cell producing faster than
    the frontend reads is slowed down instead of filling the kernel's memory.
    """

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self._cond = threading.Condition(threading.Lock())
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        # At the socket, waiting for a reader with room.
        self.messages = 0
        self.nbytes = 0
        # Handed to the IOPub thread, not taken by it yet.
        self.queued_messages = 0
        self.queued_bytes = 0
        self.peak_messages = 0
        self.peak_bytes = 0
        self.producer_waits = 0
        self.producer_wait_seconds = 0.0
        self.gave_up = 0
        self._removed = 0
        self._waiting = 0
        self._grace_until = 0.0
        if hasattr(os, "register_at_fork"):
            this = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _reset_after_fork(this))

    def full(self) -> bool:
        """Whether the backlog is at a cap (read without the lock: a hint for the fast path)."""
        return (0 < self.max_messages <= self.messages + self.queued_messages) or (
            0 < self.max_bytes <= self.nbytes + self.queued_bytes
        )

    @property
    def waiting_messages(self) -> int:
        """Messages waiting in the kernel now: queued for the IOPub thread or at the socket."""
        return self.messages + self.queued_messages

    @property
    def waiting_bytes(self) -> int:
        """Bytes of the messages waiting in the kernel now."""
        return self.nbytes + self.queued_bytes

    def wait_for_room(self, may_wait: t.Callable[[], bool], patience: float) -> None:
        """Wait while the backlog is full and ``may_wait()`` (called with the lock held).

        Interruptible: a KeyboardInterrupt in the wait propagates, and for
        ``INTERRUPT_GRACE`` seconds nobody is held back. Gives up after
        ``patience`` seconds in which nothing left the backlog: the IOPub
        thread, which drains it or falls back, is then stuck itself (say, on a
        lock this thread holds), and waiting longer could only deadlock.
        """
        with self._cond:
            if not self.full() or time.monotonic() < self._grace_until or not may_wait():
                return
            start = last_progress = time.monotonic()
            removed = self._removed
            self._waiting += 1
            self.producer_waits += 1
            try:
                while self.full() and may_wait():
                    self._cond.wait(WAIT_SLICE)
                    now = time.monotonic()
                    if self._removed != removed:
                        removed, last_progress = self._removed, now
                    elif now - last_progress >= patience:
                        self.gave_up += 1
                        return
            except BaseException:
                self.grant_grace()
                raise
            finally:
                self._waiting -= 1
                self.producer_wait_seconds += time.monotonic() - start

    def grant_grace(self) -> None:
        """Hold nobody back for ``INTERRUPT_GRACE`` seconds (the user interrupted a cell)."""
        self._grace_until = time.monotonic() + INTERRUPT_GRACE

    def add(self, messages: int, nbytes: int) -> None:
        """Count messages in (a reader had no room for them)."""
        with self._cond:
            self.messages += messages
            self.nbytes += nbytes
            self._note_peak()

    def remove(self, messages: int, nbytes: int) -> None:
        """Count messages out (sent, or dropped by the fallback); wake held-back senders."""
        with self._cond:
            self.messages -= messages
            self.nbytes -= nbytes
            self._left(messages)

    def count_queued(self, messages: int, nbytes: int) -> None:
        """Count messages handed to the IOPub thread (creates no object: see ``wire.py``)."""
        with self._cond:
            self.queued_messages += messages
            self.queued_bytes += nbytes
            self._note_peak()

    def count_taken(self, messages: int, nbytes: int) -> None:
        """Count out messages the IOPub thread took; wake held-back senders."""
        with self._cond:
            self.queued_messages -= messages
            self.queued_bytes -= nbytes
            self._left(messages)

    def _left(self, messages: int) -> None:
        # Under the lock. Messages leaving the queue are progress too: a sender
        # held back by queued messages must not give up while they drain.
        self._removed += messages
        if self._waiting and not self.full():
            self._cond.notify_all()

    def _note_peak(self) -> None:
        self.peak_messages = max(self.peak_messages, self.messages + self.queued_messages)
        self.peak_bytes = max(self.peak_bytes, self.nbytes + self.queued_bytes)

    def set_caps(self, max_messages: int, max_bytes: int) -> None:
        """Change the caps; held-back senders re-check at once."""
        with self._cond:
            self.max_messages = max_messages
            self.max_bytes = max_bytes
            self._cond.notify_all()

    def wake(self) -> None:
        """Make held-back senders re-check whether they may still wait."""
        with self._cond:
            self._cond.notify_all()


def _reset_after_fork(backlog_ref: weakref.ref[Backlog]) -> None:
    # A forked child has no IOPub thread and none of the parent's waiters; a
    # lock held by a parent thread at the fork would never be released.
    backlog = backlog_ref()
    if backlog is not None:
        backlog._cond = threading.Condition(threading.Lock())
        backlog._waiting = 0
