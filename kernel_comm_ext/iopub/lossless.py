"""LosslessIOPub: makes a running ipykernel's IOPub channel lossless, and puts it back.

ipykernel sends every IOPub message (output, status, comm messages) through
its ``IOPubThread``: ``send_multipart`` queues the send onto that thread's
event loop, which hands it to the zmq socket. ``start`` changes two
things, both undone by ``stop``:

- ``iopub_thread.socket`` becomes a ``LosslessSocket`` (set up on the IOPub
  thread, the socket's only user): sends wait for slow readers instead of
  being dropped, with the fallback for readers that read nothing;
- the gate of the ``IOPubScheduler`` (``iopub_thread.schedule``, through which
  every IOPub message and stream flush reaches that thread) first waits while
  the ``Backlog`` of messages kept for slow readers is at its cap, so code
  sending from any thread but ipykernel's own (IOPub, control, shell channel)
  is held back: backpressure.

Both ipykernel 6 (a PUB socket) and 7 (XPUB) are handled; an IOPub thread
without the expected parts is left alone with a log line.
"""

from __future__ import annotations

import logging
import sys
import threading
import typing as t

import zmq

from .backlog import Backlog
from .ipykernel_internals import exempt_thread_idents, shutting_down, unsupported_reason
from .scheduler import IOPubScheduler
from .socket import LosslessSocket
from .stats import IOPubStats

STALL_SETTING = "KernelCommManager.iopub_stall_timeout"

# How long start/stop wait for the IOPub thread to apply a change (read at each call).
APPLY_TIMEOUT = 5.0

# A held-back sender stops waiting when nothing left the backlog for the stall
# timeout plus this long: the IOPub thread falls back within the stall timeout,
# so it must be stuck (e.g. a comm collected on it waits for a lock the sender holds).
PATIENCE_MARGIN = 2.0


class LosslessIOPub:
    """Lossless IOPub for one kernel: ``start`` applies it, ``stop`` restores ipykernel's.

    Started and stopped by ``IOPubTakeover`` (``takeover.py``), on a kernel
    whose IOPub thread ``ipykernel_internals.unsupported_reason`` accepted and
    whose ``schedule`` the takeover's ``IOPubScheduler`` stands in for.
    """

    def __init__(
        self,
        kernel: t.Any,
        scheduler: IOPubScheduler,
        *,
        sndhwm: int,
        max_messages: int,
        max_bytes: int,
        stall_timeout: float,
        log: logging.Logger | logging.LoggerAdapter[t.Any],
    ) -> None:
        self.kernel = kernel
        self.log = log
        self._scheduler = scheduler
        self._sndhwm = sndhwm
        self._stall_timeout = stall_timeout
        self._backlog = Backlog(max_messages, max_bytes)
        self._iopub_thread: t.Any = kernel.iopub_thread
        self._socket: LosslessSocket | None = None
        self._original_sndhwm: int | None = None
        self._exempt: frozenset[int | None] = frozenset()
        self._active = False
        #: Why the last ``start`` did not make the channel lossless (None: it did, or none ran).
        self.failure: str | None = None

    # applying and restoring

    def start(self) -> bool:
        """Make the IOPub channel lossless; False (and a log line) when it was not.

        Whole or not at all: the change is made on the IOPub thread, and if
        that thread does not take it within ``APPLY_TIMEOUT`` seconds it is
        withdrawn, so nothing of it happens later.
        """
        if self._active:
            return True
        self.failure = None
        self._exempt = exempt_thread_idents(self.kernel, self._iopub_thread)
        if not self._on_iopub_thread(self._apply, "apply lossless IOPub", withdraw=True):
            self.failure = self.failure or "the IOPub thread did not take the change in time"
            return False
        if not self._active:
            return False
        self.log.info(
            "kernel-comm-ext: lossless IOPub on (high-water mark %d, stall timeout %g s)",
            self._sndhwm,
            self._stall_timeout,
        )
        return True

    def _apply(self) -> None:
        """On the IOPub thread: wrap the socket, then hold senders back at the cap."""
        iopub_thread = self._iopub_thread
        socket = iopub_thread.socket
        reason = unsupported_reason(iopub_thread)
        if reason is None and isinstance(socket, LosslessSocket):
            reason = "its IOPub socket is already wrapped by another kernel-comm-ext manager"
        if reason is not None:
            self.failure = reason
            self.log.info("kernel-comm-ext: lossless IOPub is not available: %s", reason)
            return
        self._original_sndhwm = socket.getsockopt(zmq.SNDHWM)
        if self._sndhwm:
            socket.setsockopt(zmq.SNDHWM, self._sndhwm)
        self._socket = LosslessSocket(
            socket,
            iopub_thread.io_loop,
            self._backlog,
            self._stall_timeout,
            self.log,
            STALL_SETTING,
        )
        iopub_thread.socket = self._socket
        self._scheduler.gate = self._hold_back
        self._active = True

    def stop(self, timeout: float | None = None) -> None:
        """Restore ipykernel's sending and the socket's options, once nothing waits.

        What is waiting for a reader still goes out first, in order (or is
        dropped by the fallback after the stall timeout). Waits up to
        ``timeout`` seconds (default: the stall timeout plus a margin) for that;
        past it, the IOPub thread restores the socket when it gets there.
        """
        if not self._active:
            return
        self._active = False
        if self._scheduler.gate == self._hold_back:
            self._scheduler.gate = None
        self._backlog.wake()
        if timeout is None:
            timeout = self._stall_timeout + APPLY_TIMEOUT

        def restore_when_drained() -> None:
            socket = self._socket
            if socket is not None:
                socket.when_drained(self._restore_socket)

        self._on_iopub_thread(restore_when_drained, "restore the IOPub socket", timeout=timeout)

    def _restore_socket(self) -> None:
        iopub_thread, socket = self._iopub_thread, self._socket
        if socket is None or iopub_thread.socket is not socket:
            return  # closed by the kernel meanwhile, or wrapped again by someone else
        plain = socket.wrapped
        iopub_thread.socket = plain
        if not plain.closed:
            # XPUB_NODROP cannot be read back; ipykernel leaves it at zmq's default, off.
            plain.setsockopt(zmq.XPUB_NODROP, 0)
            if self._original_sndhwm is not None:
                plain.setsockopt(zmq.SNDHWM, self._original_sndhwm)

    def _on_iopub_thread(
        self,
        action: t.Callable[[], None],
        what: str,
        *,
        timeout: float | None = None,
        withdraw: bool = False,
    ) -> bool:
        """Run ``action`` on the IOPub thread and wait for it; False if it failed or timed out.

        On a timeout, ``withdraw`` cancels ``action`` unless the IOPub thread has
        begun it (then this waits for it to end: it is short); else it runs later.
        """
        iopub_thread = self._iopub_thread
        if threading.get_ident() == iopub_thread.thread.ident:
            action()
            return True
        if timeout is None:
            timeout = APPLY_TIMEOUT
        done = threading.Event()
        claim = threading.Lock()
        state = ["queued"]  # -> "running" (the IOPub thread took it) or "withdrawn"
        failure: list[BaseException] = []

        def run() -> None:
            with claim:
                if state[0] == "withdrawn":
                    return
                state[0] = "running"
            try:
                action()
            except Exception as exc:
                failure.append(exc)
            finally:
                done.set()

        self._scheduler.enqueue(run)
        if not done.wait(timeout):
            with claim:
                withdrawn = withdraw and state[0] == "queued"
                if withdrawn:
                    state[0] = "withdrawn"
            if withdrawn or not withdraw:
                self.log.warning(
                    "kernel-comm-ext: the IOPub thread did not %s within %g s; %s",
                    what,
                    timeout,
                    "it was called off" if withdrawn else "it will when it can",
                )
                return False
            done.wait()  # begun at the last moment: it ends soon
        if failure:
            self.failure = f"could not {what}: {failure[0]!r}"
            self.log.error("kernel-comm-ext: could not %s", what, exc_info=failure[0])
            return False
        return True

    # the senders' side

    def _hold_back(self) -> None:
        """The scheduler's gate: wait while the backlog is at its cap (unless exempt)."""
        backlog = self._backlog
        if backlog.full() and self._may_hold_back():
            backlog.wait_for_room(self._may_hold_back, self._stall_timeout + PATIENCE_MARGIN)

    def _may_hold_back(self) -> bool:
        """Whether the calling thread may be held back by the backlog cap now."""
        if isinstance(sys.exc_info()[1], KeyboardInterrupt):
            # The user interrupted a cell outside a wait: its error, and the idle
            # status after it, must reach the frontend as they do after one inside.
            self._backlog.grant_grace()
            return False
        # Never hold back ipykernel's own threads (the IOPub thread would wait
        # for itself; control must keep answering), nor anyone once stopped or
        # once the kernel was asked to shut down.
        return (
            self._active
            and threading.get_ident() not in self._exempt
            and self._iopub_thread.thread.is_alive()
            and not shutting_down(self.kernel)
        )

    # settings and figures

    def configure(
        self,
        *,
        sndhwm: int | None = None,
        max_messages: int | None = None,
        max_bytes: int | None = None,
        stall_timeout: float | None = None,
    ) -> None:
        """Change settings of a running lossless channel (from ``%config``)."""
        if max_messages is not None or max_bytes is not None:
            self._backlog.set_caps(
                self._backlog.max_messages if max_messages is None else max_messages,
                self._backlog.max_bytes if max_bytes is None else max_bytes,
            )
        if stall_timeout is not None:
            self._stall_timeout = stall_timeout
            if self._socket is not None:
                self._socket.stall_timeout = stall_timeout
        if sndhwm is not None and sndhwm != self._sndhwm:
            self._sndhwm = sndhwm
            socket = self._socket
            if self._active and socket is not None:
                hwm = sndhwm or self._original_sndhwm or 1000
                self._scheduler.enqueue(lambda: socket.wrapped.setsockopt(zmq.SNDHWM, hwm))

    @property
    def backlog(self) -> Backlog:
        """What waits for slow readers, and its caps (comm senders count what they queue)."""
        return self._backlog

    @property
    def active(self) -> bool:
        """Whether the channel is lossless (or falling back) now."""
        return self._active

    def stats(self) -> IOPubStats:
        """The channel's figures now (``state`` is "lossless" or "off")."""
        backlog, socket = self._backlog, self._socket
        state = "lossless" if self._active and socket is not None else "off"
        figures: dict[str, t.Any] = {}
        if socket is not None:
            current = socket.current_wait()
            figures = {
                "waits": socket.waits,
                "waited_messages": socket.waited_messages,
                "wait_seconds": socket.wait_seconds + current,
                "longest_wait_seconds": max(socket.longest_wait_seconds, current),
                "fallbacks": socket.fallbacks,
                "dropped": socket.dropped,
            }
        return IOPubStats(
            state=state,
            sndhwm=(self._sndhwm or self._original_sndhwm) if self._active else None,
            producer_waits=backlog.producer_waits,
            producer_wait_seconds=backlog.producer_wait_seconds,
            backlog_messages=backlog.waiting_messages,
            backlog_bytes=backlog.waiting_bytes,
            peak_backlog_messages=backlog.peak_messages,
            peak_backlog_bytes=backlog.peak_bytes,
            **figures,
        )
