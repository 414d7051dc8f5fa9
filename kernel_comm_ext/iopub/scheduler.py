"""IOPubScheduler: how work reaches ipykernel's IOPub thread while kernel-comm-ext is loaded.

Every IOPub message and every flush of ``sys.stdout``/``sys.stderr`` reaches
the IOPub thread through ``IOPubThread.schedule``, which queues a callable and
wakes the thread through a zmq pipe, once per callable. The thread runs
everything queued on the first wake-up, so the later ones find nothing to do,
yet each still costs it a pass through its event loop, holding the interpreter
lock. A comm request costs about seven (busy status, the reply, two flushes
that schedule twice each, idle status): measured with W4 of ``benchmarks/``,
those wake-ups are about a third of the IOPub thread's time.

Installed as ``iopub_thread.schedule``, the scheduler

- with ``batch_wakeups``, keeps callables in its own queue and wakes the IOPub
  thread only when that queue was idle: the one callable it puts in
  ipykernel's queue (``_run_queued``) runs everything queued, in order, until the
  queue is empty. Work scheduled after ``stop`` lands in ipykernel's queue
  behind that ``_run_queued``, so it still runs after everything queued before;
- passes each call through ``gate``, set by lossless IOPub (``LosslessIOPub``) to
  hold a sender back while the backlog is at its cap.

A stopped IOPub thread runs the callable on the calling thread, as ipykernel does.
"""

from __future__ import annotations

import collections
import logging
import threading
import typing as t

from .ipykernel_internals import ipykernel_queue

Action = t.Callable[[], object]

_NOT_SET = object()


class IOPubScheduler:
    """``IOPubThread.schedule`` of one kernel: ``start`` puts it in place, ``stop`` undoes it."""

    def __init__(
        self,
        iopub_thread: t.Any,
        *,
        batch_wakeups: bool,
        log: logging.Logger | logging.LoggerAdapter[t.Any],
    ) -> None:
        self._iopub_thread = iopub_thread
        self._runner: threading.Thread = iopub_thread.thread
        self._batch_wakeups = batch_wakeups
        self.log = log
        #: Called before each callable is queued (may block); set by lossless IOPub.
        self.gate: t.Callable[[], None] | None = None
        self._work: collections.deque[Action] = collections.deque()
        self._lock = threading.Lock()
        self._run_queued_scheduled = False
        self._saved_schedule: t.Any = _NOT_SET
        self._active = False
        #: Callables queued here, and the wake-ups of the IOPub thread they took.
        self.scheduled = 0
        self.wakeups = 0

    @property
    def active(self) -> bool:
        """Whether this scheduler is ``iopub_thread.schedule`` now."""
        return self._active

    @property
    def hand_off_queue(self) -> collections.deque[Action]:
        """Where scheduled callables wait for the IOPub thread (ipykernel's, if not batching).

        ``IOPubBatch`` adds messages to a batch only while that batch is the last one here.
        """
        if self._batch_wakeups:
            return self._work
        return t.cast("collections.deque[Action]", ipykernel_queue(self._iopub_thread))

    def start(self) -> None:
        """Stand in for ``iopub_thread.schedule``."""
        if self._active:
            return
        iopub_thread = self._iopub_thread
        self._saved_schedule = vars(iopub_thread).get("schedule", _NOT_SET)
        iopub_thread.schedule = self.schedule
        self._active = True

    def stop(self) -> None:
        """Give ``iopub_thread.schedule`` back; what is queued still runs, in order."""
        if not self._active:
            return
        self._active = False
        self.gate = None
        iopub_thread = self._iopub_thread
        if vars(iopub_thread).get("schedule") == self.schedule:
            if self._saved_schedule is _NOT_SET:
                del iopub_thread.schedule
            else:
                iopub_thread.schedule = self._saved_schedule
        # Else someone wrapped it after us: ``schedule`` now only passes work on.

    def schedule(self, action: Action) -> None:
        """Run ``action`` on the IOPub thread, after everything scheduled before it."""
        gate = self.gate
        if gate is None:
            self.enqueue(action)
            return
        try:
            gate()
        finally:
            # Also when the wait was interrupted: the message was already made.
            self.enqueue(action)

    def enqueue(self, action: Action) -> None:
        """Queue ``action`` for the IOPub thread without passing the gate."""
        if not self._active or not self._batch_wakeups:
            self._plain_schedule(action)
            return
        if not self._runner.is_alive():
            action()  # as ipykernel (a forked child, or after shutdown)
            return
        waking = False
        try:
            with self._lock:
                self._work.append(action)
                self.scheduled += 1
                if self._run_queued_scheduled:
                    return
                waking = True
                self._run_queued_scheduled = True
                self.wakeups += 1
            self._plain_schedule(self._run_queued)
        except BaseException:
            if waking:
                # Interrupted (KeyboardInterrupt) before the drain was surely queued:
                # the next call wakes the thread again. Two drains do no harm; a
                # queue nobody drains would hold every IOPub message from now on.
                with self._lock:
                    self._run_queued_scheduled = False
            raise

    def _plain_schedule(self, action: Action) -> None:
        """Schedule as ipykernel does (or whoever wrapped ``schedule`` before us)."""
        if self._saved_schedule is not _NOT_SET:
            self._saved_schedule(action)
        else:
            type(self._iopub_thread).schedule(self._iopub_thread, action)

    def _run_queued(self) -> None:
        """On the IOPub thread: run queued callables, oldest first, until none is left."""
        work = self._work
        finished = False
        try:
            while True:
                try:
                    action = work.popleft()
                except IndexError:
                    with self._lock:
                        if work:
                            continue
                        self._run_queued_scheduled = False
                        finished = True
                        return
                try:
                    action()
                except Exception:
                    # ipykernel's event loop would log it and leave the rest for
                    # the next wake-up; here the rest runs now.
                    self.log.exception("kernel-comm-ext: a callable on the IOPub thread failed")
        finally:
            if not finished:
                self._plain_schedule(self._run_queued)
