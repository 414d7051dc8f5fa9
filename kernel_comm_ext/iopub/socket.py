"""LosslessSocket: ipykernel's IOPub socket, waiting for slow readers instead of dropping.

ipykernel's IOPub socket is a zmq (X)PUB socket. At its send high-water mark
zmq silently drops what a reader has no room for. With ``XPUB_NODROP`` set, a
non-blocking send raises ``zmq.Again`` instead; this wrapper then keeps the
message, and every later one, in order, and retries from the IOPub thread's
event loop until the reader has drained.

A reader that takes nothing at all for ``stall_timeout`` seconds must not
freeze the kernel. The socket then falls back: with ``XPUB_NODROP`` off for a
single send, zmq drops that message for every reader without room and stops
queueing for them (zmq's own rule: a reader that dropped a message is skipped
until it has read about half of its queue); then ``XPUB_NODROP`` goes back on
and the waiting messages go out to the readers that keep up. So the stalled
reader misses what waited for it and what is sent until it catches up, after
which it gets everything again, losslessly; readers that keep up lose nothing.
zmq does not report the messages it skips a reader for, so ``dropped`` counts
the ones that were waiting for it when the channel fell back.

Everything here runs on the IOPub thread, the only thread that may use the
socket; a send from any other thread (the IOPub thread has stopped, e.g. at
shutdown) never waits.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
import typing as t

import zmq

from .backlog import Backlog, frames_nbytes

_NOBLOCK = int(zmq.NOBLOCK)

# Retry delays while a reader is behind: short at first (a slow reader drains
# quickly), doubling while nothing moves, so a silent reader costs little CPU.
FIRST_RETRY = 0.0005
MAX_RETRY = 0.02

_OWN_ATTRIBUTES = frozenset(
    {
        "_socket",
        "_io_loop",
        "_thread_ident",
        "_backlog",
        "_log",
        "_stall_setting",
        "_unsent",
        "_timer",
        "_delay",
        "_wait_started",
        "_last_progress",
        "_warned",
        "_on_drained",
        "stall_timeout",
        "waits",
        "waited_messages",
        "wait_seconds",
        "longest_wait_seconds",
        "fallbacks",
        "dropped",
    }
)


def _check_frames(parts: t.Sequence[t.Any]) -> None:
    """Refuse a message with a frame zmq cannot send, before any frame is sent (as pyzmq)."""
    if not parts:
        raise ValueError("an IOPub message needs at least one frame")
    for index, part in enumerate(parts):
        if type(part) is bytes or isinstance(part, (memoryview, zmq.Frame)):
            continue
        try:
            memoryview(part)
        except TypeError:
            raise TypeError(
                f"Frame {index} ({repr(part)[:32]}) does not support the buffer interface."
            ) from None


class _UnsentMessage(t.NamedTuple):
    parts: t.Sequence[t.Any]
    flags: int
    copy: bool
    track: bool
    kwargs: dict[str, t.Any]
    nbytes: int


class LosslessSocket:
    """A stand-in for ipykernel's IOPub socket (``IOPubThread.socket``) that loses nothing.

    Attribute reads and writes it does not handle go to the wrapped socket, so
    ipykernel's code using ``iopub_thread.socket`` keeps working. Its counters
    (``waits``, ``wait_seconds``, ``dropped``...) are the channel's figures.
    """

    __slots__ = tuple(sorted(_OWN_ATTRIBUTES))

    _socket: zmq.Socket[t.Any]
    _io_loop: t.Any
    _thread_ident: int
    _backlog: Backlog
    _log: logging.Logger | logging.LoggerAdapter[t.Any]
    _stall_setting: str
    _unsent: collections.deque[_UnsentMessage]
    _timer: object | None
    _delay: float
    _wait_started: float
    _last_progress: float
    _warned: bool
    _on_drained: list[t.Callable[[], None]]
    #: Seconds without any reader progress before falling back to dropping.
    stall_timeout: float
    waits: int
    waited_messages: int
    wait_seconds: float
    longest_wait_seconds: float
    fallbacks: int
    dropped: int

    def __init__(
        self,
        socket: zmq.Socket[t.Any],
        io_loop: t.Any,
        backlog: Backlog,
        stall_timeout: float,
        log: logging.Logger | logging.LoggerAdapter[t.Any],
        stall_setting: str,
    ) -> None:
        self._socket = socket
        self._io_loop = io_loop
        self._thread_ident = threading.get_ident()
        self._backlog = backlog
        self._log = log
        self._stall_setting = stall_setting
        self._unsent = collections.deque()
        self._timer = None
        self._delay = FIRST_RETRY
        self._wait_started = 0.0
        self._last_progress = 0.0
        self._warned = False
        self._on_drained = []
        self.stall_timeout = stall_timeout
        self.waits = 0
        self.waited_messages = 0
        self.wait_seconds = 0.0
        self.longest_wait_seconds = 0.0
        self.fallbacks = 0
        self.dropped = 0
        socket.setsockopt(zmq.XPUB_NODROP, 1)

    # the wrapped socket, for everything else

    @property
    def wrapped(self) -> zmq.Socket[t.Any]:
        """The zmq socket underneath."""
        return self._socket

    def __getattr__(self, name: str) -> t.Any:
        if name in _OWN_ATTRIBUTES:
            raise AttributeError(name)
        return getattr(self._socket, name)

    def __setattr__(self, name: str, value: t.Any) -> None:
        if name in _OWN_ATTRIBUTES:
            object.__setattr__(self, name, value)
        else:
            setattr(self._socket, name, value)

    # sending

    def send_multipart(
        self,
        msg_parts: t.Sequence[t.Any],
        flags: int = 0,
        copy: bool = True,
        track: bool = False,
        **kwargs: t.Any,
    ) -> None:
        """Send one message, or keep it (in order) until the readers have room."""
        if threading.get_ident() != self._thread_ident:
            self._send_off_thread(msg_parts, flags, copy, track, kwargs)
            return
        if not self._unsent and self._try_send(msg_parts, flags, copy, track, kwargs):
            return
        self._keep(_UnsentMessage(msg_parts, flags, copy, track, kwargs, frames_nbytes(msg_parts)))

    def _send(
        self,
        parts: t.Sequence[t.Any],
        flags: int,
        copy: bool,
        track: bool,
        kwargs: dict[str, t.Any],
    ) -> None:
        """Send without blocking, as ipykernel sends (``zmq.Again`` if a reader has no room).

        Only the first frame can meet the high-water mark (zmq counts whole
        messages, and only this thread writes), so a message is never cut.
        Measured: pyzmq's own ``send_multipart`` delivers faster here than a
        leaner loop, which wakes the IOPub thread (and zmq) for smaller batches.
        """
        self._socket.send_multipart(parts, flags | _NOBLOCK, copy=copy, track=track, **kwargs)

    def _try_send(
        self,
        parts: t.Sequence[t.Any],
        flags: int,
        copy: bool,
        track: bool,
        kwargs: dict[str, t.Any],
    ) -> bool:
        """Send now if every reader has room; False when the message must wait."""
        try:
            self._send(parts, flags, copy, track, kwargs)
        except zmq.Again:
            return False
        return True

    def _send_off_thread(
        self,
        parts: t.Sequence[t.Any],
        flags: int,
        copy: bool,
        track: bool,
        kwargs: dict[str, t.Any],
    ) -> None:
        # The IOPub thread is gone (shutdown, forked child): nothing could
        # retry, so never wait here.
        if not self._try_send(parts, flags, copy, track, kwargs):
            self.dropped += 1

    # waiting for a reader

    def _keep(self, message: _UnsentMessage) -> None:
        # A message that can never be sent must not sit at the head of the queue.
        _check_frames(message.parts)
        if not self._unsent:
            now = time.monotonic()
            self.waits += 1
            self._wait_started = now
            self._last_progress = now
            self._delay = FIRST_RETRY
            self._arm()
        self._unsent.append(message)
        self.waited_messages += 1
        self._backlog.add(1, message.nbytes)

    def _arm(self) -> None:
        if self._timer is None:
            self._timer = self._io_loop.call_later(self._delay, self._retry)

    def _retry(self) -> None:
        self._timer = None
        if self._send_unsent():
            self._last_progress = time.monotonic()
            self._delay = FIRST_RETRY
        elif time.monotonic() - self._last_progress >= self.stall_timeout:
            self._fall_back()
            self._last_progress = time.monotonic()
            self._delay = FIRST_RETRY
            self._send_unsent()
        else:
            self._delay = min(self._delay * 2, MAX_RETRY)
        if self._unsent:
            self._arm()  # a reader that keeps up, but not that fast: wait for it
        else:
            self._end_wait()

    def _send_unsent(self) -> int:
        """Send waiting messages, oldest first, until a reader has no room; how many left."""
        unsent = self._unsent
        sent = 0
        nbytes = 0
        while unsent:
            head = unsent[0]
            try:
                if not self._try_send(head.parts, head.flags, head.copy, head.track, head.kwargs):
                    break
            except zmq.ZMQError as exc:
                # Not for want of room (the socket is closing, say): this message
                # cannot go, and must not hold up the ones behind it.
                self._log.error("kernel-comm-ext: an IOPub message could not be sent: %s", exc)
            unsent.popleft()
            sent += 1
            nbytes += head.nbytes
        if sent:
            self._backlog.remove(sent, nbytes)
        return sent

    def _fall_back(self) -> None:
        """Give up on the readers without room: drop the oldest message for them."""
        missed = len(self._unsent)
        head = self._unsent.popleft()
        socket = self._socket
        socket.setsockopt(zmq.XPUB_NODROP, 0)
        try:
            self._send(head.parts, head.flags, head.copy, head.track, head.kwargs)
        except zmq.ZMQError as exc:
            self._log.error("kernel-comm-ext: an IOPub message could not be sent: %s", exc)
        finally:
            socket.setsockopt(zmq.XPUB_NODROP, 1)
            self._backlog.remove(1, head.nbytes)
        self.fallbacks += 1
        self.dropped += missed
        if not self._warned:
            self._warned = True
            self._log.warning(
                "kernel-comm-ext: an IOPub reader (a frontend) has taken no message for %g s;"
                " it now misses the %d messages waiting for it and what follows until it"
                " catches up, so that the kernel does not freeze. Readers that keep up lose"
                " nothing. Set %s to wait longer.",
                self.stall_timeout,
                missed,
                self._stall_setting,
            )
        else:
            self._log.info(
                "kernel-comm-ext: an IOPub reader took no message for %g s again; it misses %d",
                self.stall_timeout,
                missed,
            )

    def _end_wait(self) -> None:
        waited = time.monotonic() - self._wait_started
        self.wait_seconds += waited
        self.longest_wait_seconds = max(self.longest_wait_seconds, waited)
        callbacks, self._on_drained = self._on_drained, []
        for callback in callbacks:
            callback()

    # figures and lifetime

    @property
    def unsent_count(self) -> int:
        """Messages waiting here for a reader."""
        return len(self._unsent)

    def current_wait(self) -> float:
        """Seconds the channel has been waiting for a reader now (0 when it is not)."""
        return time.monotonic() - self._wait_started if self._unsent else 0.0

    def when_drained(self, callback: t.Callable[[], None]) -> None:
        """Call ``callback`` on the IOPub thread once nothing waits here (at once if so)."""
        if not self._unsent:
            callback()
        elif threading.get_ident() != self._thread_ident:
            self._flush_lossy()
            callback()
        else:
            self._on_drained.append(callback)

    def _flush_lossy(self) -> None:
        """Send what waits to the readers that have room, without waiting (shutdown)."""
        if self._timer is not None:
            self._io_loop.remove_timeout(self._timer)
            self._timer = None
        if not self._unsent:
            return
        self._socket.setsockopt(zmq.XPUB_NODROP, 0)
        left = len(self._unsent)
        nbytes = sum(m.nbytes for m in self._unsent)
        while self._unsent:
            head = self._unsent.popleft()
            with contextlib.suppress(zmq.ZMQError):  # best effort: the kernel is going away
                self._send(head.parts, head.flags, head.copy, head.track, head.kwargs)
        self._backlog.remove(left, nbytes)
        self._end_wait()

    def close(self, linger: int | None = None) -> None:
        """Close the socket (ipykernel's shutdown); what still waits goes to readers with room."""
        if not self._socket.closed:
            try:
                self._flush_lossy()
            except zmq.ZMQError as exc:
                self._log.debug("kernel-comm-ext: IOPub messages lost at close: %s", exc)
        self._socket.close(linger)
