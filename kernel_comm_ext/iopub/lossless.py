"""LosslessIOPub: makes a running ipykernel's IOPub channel lossless, and puts it back.

ipykernel sends every IOPub message (output, status, comm messages) through
its ``IOPubThread``: ``send_multipart`` queues the send onto that thread's
event loop, which hands it to the zmq socket. Starting a flow changes two
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

import dataclasses
import logging
import sys
import threading
import typing as t

import zmq

from ..protocol.stats import format_bytes
from .backlog import Backlog
from .scheduler import IOPubScheduler
from .socket import LosslessSocket

STALL_SETTING = "KernelCommManager.iopub_stall_timeout"

# How long start/stop wait for the IOPub thread to apply a change.
APPLY_TIMEOUT = 5.0

# A held-back sender stops waiting when nothing left the backlog for the stall
# timeout plus this long: the IOPub thread falls back within the stall timeout,
# so it must be stuck (e.g. a comm collected on it waits for a lock the sender holds).
PATIENCE_MARGIN = 2.0


@dataclasses.dataclass(frozen=True)
class IOPubStats:
    """Figures of the kernel's IOPub channel (``KernelCommManager.iopub_stats()``, ``%comm``)."""

    #: "lossless"; "off" (the setting, or unloaded); "unavailable" (this
    #: kernel's IOPub thread is not one kernel-comm-ext can change).
    state: str
    #: The socket's send high-water mark (messages a reader may fall behind in zmq).
    sndhwm: int | None = None
    #: How often sends found a reader without room and waited, in how many
    #: messages, for how long in total and at most.
    waits: int = 0
    waited_messages: int = 0
    wait_seconds: float = 0.0
    longest_wait_seconds: float = 0.0
    #: How often, and how long in total, code sending was held back by the backlog cap.
    producer_waits: int = 0
    producer_wait_seconds: float = 0.0
    #: How often a reader took nothing for the stall timeout, so the channel fell
    #: back to dropping for it, and the messages that were waiting for it then.
    fallbacks: int = 0
    dropped: int = 0
    #: What waits in the kernel now, and the most it held.
    backlog_messages: int = 0
    backlog_bytes: int = 0
    peak_backlog_messages: int = 0
    peak_backlog_bytes: int = 0
    #: Work handed to the IOPub thread (messages, batches of comm messages, stream
    #: flushes) and the wake-ups of that thread it took (``scheduler.py``).
    handed_off: int = 0
    wakeups: int = 0


def describe(stats: IOPubStats) -> str | None:
    """The ``%comm`` section of the IOPub channel's figures; None while there is no news.

    News: a send waited, a cell was held back, a stalled frontend was given up
    on, or the channel could not be made lossless in this kernel.
    """
    if stats.state == "unavailable":
        return "unavailable: ipykernel's own sending (zmq drops what a slow frontend misses)"
    if stats.state != "lossless" or not (stats.waits or stats.producer_waits or stats.fallbacks):
        return None
    return "\n".join(
        [
            f"lossless, send high-water mark {stats.sndhwm}",
            f"sends waited for a frontend: {stats.waits} times, {stats.waited_messages} messages,"
            f" {stats.wait_seconds:.2f} s in all (longest {stats.longest_wait_seconds:.2f} s)",
            f"cells held back by the backlog cap: {stats.producer_waits} times,"
            f" {stats.producer_wait_seconds:.2f} s in all",
            f"stalled frontends given up on: {stats.fallbacks} times,"
            f" {stats.dropped} messages dropped for them",
            f"waiting in the kernel: {stats.backlog_messages} messages"
            f" ({format_bytes(stats.backlog_bytes)}), at most {stats.peak_backlog_messages}"
            f" ({format_bytes(stats.peak_backlog_bytes)})",
            f"handed to the IOPub thread: {stats.handed_off} times, in {stats.wakeups} wake-ups",
        ]
    )


def unsupported_reason(iopub_thread: t.Any) -> str | None:  # noqa: PLR0911
    """Why ``iopub_thread`` cannot be made lossless, or None when it can."""
    if iopub_thread is None:
        return "the kernel has no IOPub thread"
    for name in ("schedule", "_really_send", "io_loop", "thread", "socket"):
        if not hasattr(iopub_thread, name):
            return f"its IOPub thread ({type(iopub_thread).__name__}) has no {name!r}"
    socket = iopub_thread.socket
    if isinstance(socket, LosslessSocket):
        return "its IOPub socket is already wrapped by another kernel-comm-ext manager"
    if not isinstance(socket, zmq.Socket):
        return f"its IOPub socket is a {type(socket).__name__}, not a zmq socket"
    if socket.closed or socket.type not in (zmq.PUB, zmq.XPUB):
        return "its IOPub socket is closed or not a PUB/XPUB socket"
    if not iopub_thread.thread.is_alive():
        return "its IOPub thread is not running"
    return None


class LosslessIOPub:
    """Lossless IOPub for one kernel: ``start`` applies it, ``stop`` restores ipykernel's."""

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
        self._thread: t.Any = None
        self._socket: LosslessSocket | None = None
        self._original_sndhwm: int | None = None
        self._exempt: frozenset[int | None] = frozenset()
        self._active = False
        self._unavailable: str | None = None

    # applying and restoring

    def start(self) -> bool:
        """Make the IOPub channel lossless; False (and a log line) when it cannot be."""
        if self._active:
            return True
        iopub_thread: t.Any = getattr(self.kernel, "iopub_thread", None)
        reason = unsupported_reason(iopub_thread)
        if reason is None and not self._scheduler.active:
            reason = "kernel-comm-ext does not schedule work on its IOPub thread"
        if reason is not None:
            self._unavailable = reason
            self.log.info("kernel-comm-ext: lossless IOPub is not available: %s", reason)
            return False
        self._thread = iopub_thread
        kernel = self.kernel
        self._exempt = frozenset(
            getattr(getattr(kernel, name, None), "ident", None)
            for name in ("control_thread", "shell_channel_thread")
        ) | {iopub_thread.thread.ident}
        if not self._on_iopub_thread(self._apply, "apply lossless IOPub"):
            return False
        self.log.info(
            "kernel-comm-ext: lossless IOPub on (high-water mark %d, stall timeout %g s)",
            self._sndhwm,
            self._stall_timeout,
        )
        return self._active

    def _apply(self) -> None:
        """On the IOPub thread: wrap the socket, then hold senders back at the cap."""
        iopub_thread = self._thread
        socket = iopub_thread.socket
        reason = unsupported_reason(iopub_thread)
        if reason is not None:
            self._unavailable = reason
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
        ``timeout`` seconds (default: the stall timeout plus a margin) for that.
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

        self._on_iopub_thread(restore_when_drained, "restore the IOPub socket", timeout)

    def _restore_socket(self) -> None:
        iopub_thread, socket = self._thread, self._socket
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
        self, action: t.Callable[[], None], what: str, timeout: float = APPLY_TIMEOUT
    ) -> bool:
        """Run ``action`` on the IOPub thread and wait for it; False on timeout."""
        iopub_thread = self._thread
        if iopub_thread is None:
            return False
        if threading.get_ident() == iopub_thread.thread.ident:
            action()
            return True
        done = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                action()
            except Exception as exc:
                failure.append(exc)
            finally:
                done.set()

        self._scheduler.enqueue(run)
        if not done.wait(timeout):
            self.log.warning(
                "kernel-comm-ext: the IOPub thread did not %s within %g s; it will when it can",
                what,
                timeout,
            )
            return False
        if failure:
            self.log.error("kernel-comm-ext: could not %s", what, exc_info=failure[0])
            return False
        return True

    # the senders' side

    def _hold_back(self) -> None:
        """The scheduler's gate: wait while the backlog is at its cap (unless exempt)."""
        backlog = self._backlog
        if backlog.full() and self._may_wait():
            backlog.wait_for_room(self._may_wait, self._stall_timeout + PATIENCE_MARGIN)

    def _may_wait(self) -> bool:
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
            and self._thread.thread.is_alive()
            and getattr(self.kernel, "_shutdown_message", None) is None
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
        """Change settings of a running flow (from ``%config``)."""
        if max_messages is not None or max_bytes is not None:
            self._backlog.set_caps(
                self._backlog.max_messages if max_messages is None else max_messages,
                self._backlog.max_bytes if max_bytes is None else max_bytes,
            )
        if stall_timeout is not None:
            self._stall_timeout = stall_timeout
            if self._socket is not None:
                self._socket.stall_timeout = stall_timeout
        if sndhwm is not None:
            self._sndhwm = sndhwm
            socket = self._socket
            if self._active and socket is not None:
                hwm = sndhwm or self._original_sndhwm or 1000
                self._thread.schedule(lambda: socket.wrapped.setsockopt(zmq.SNDHWM, hwm))

    @property
    def backlog(self) -> Backlog:
        """What waits for slow readers, and its caps (comm senders count what they queue)."""
        return self._backlog

    @property
    def active(self) -> bool:
        """Whether the channel is lossless (or falling back) now."""
        return self._active

    def stats(self) -> IOPubStats:
        """The channel's figures now."""
        backlog, socket = self._backlog, self._socket
        if self._unavailable is not None and socket is None:
            state = "unavailable"
        elif not self._active or socket is None:
            state = "off"
        else:
            state = "lossless"
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
