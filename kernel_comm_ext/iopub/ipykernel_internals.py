"""Every part of ipykernel's IOPub machinery that kernel-comm-ext relies on, in one place.

None of these is a documented API of ipykernel (6 and 7 both have them). The
takeover of the IOPub thread (``takeover.py``) uses them only after
``unsupported_reason`` found all of them; a kernel without one of them keeps
ipykernel's own IOPub sending, with a log line saying which is missing.

On ``kernel.iopub_thread`` (ipykernel's ``IOPubThread``):

- ``schedule(f)``: queues ``f`` for the IOPub thread and wakes it; the
  scheduler stands in for it (an instance attribute shadowing the method);
- ``_events``: the deque ``schedule`` appends to; batches of comm messages
  grow while they are last in it (``wire.py``);
- ``_really_send(frames, copy=...)``: sends one message on the socket, on the
  IOPub thread;
- ``socket``: the zmq PUB (ipykernel 6) or XPUB (7) socket; lossless IOPub
  wraps it;
- ``io_loop``: the IOPub thread's tornado loop (``call_later`` for retries);
- ``thread``: the ``threading.Thread`` running it.

On ``kernel.iopub_socket`` (``BackgroundSocket``): ``io_thread``, the IOPubThread.

On the kernel: ``control_thread`` and ``shell_channel_thread`` (never held
back by the backlog cap), ``_shutdown_message`` (set once a shutdown was asked for).
"""

from __future__ import annotations

import typing as t

import zmq

#: What the takeover uses on ``kernel.iopub_thread``.
IOPUB_THREAD_ATTRIBUTES = ("schedule", "_events", "_really_send", "socket", "io_loop", "thread")

#: Kernel threads that are never held back (their ``ident``); the IOPub thread is added.
EXEMPT_KERNEL_THREADS = ("control_thread", "shell_channel_thread")


def unsupported_reason(iopub_thread: t.Any) -> str | None:
    """Why kernel-comm-ext cannot take over ``iopub_thread``, or None when it can."""
    if iopub_thread is None:
        return "the kernel has no IOPub thread"
    for name in IOPUB_THREAD_ATTRIBUTES:
        if not hasattr(iopub_thread, name):
            return f"its IOPub thread ({type(iopub_thread).__name__}) has no {name!r}"
    socket = iopub_thread.socket
    if not isinstance(socket, zmq.Socket):
        return f"its IOPub socket is a {type(socket).__name__}, not a zmq socket"
    if socket.closed or socket.type not in (zmq.PUB, zmq.XPUB):
        return "its IOPub socket is closed or not a PUB/XPUB socket"
    if not iopub_thread.thread.is_alive():
        return "its IOPub thread is not running"
    return None


def iopub_thread_of_socket(iopub_socket: t.Any) -> t.Any:
    """The IOPubThread behind ``kernel.iopub_socket``, or None when it is not ipykernel's."""
    iopub_thread = getattr(iopub_socket, "io_thread", None)
    if all(hasattr(iopub_thread, name) for name in IOPUB_THREAD_ATTRIBUTES):
        return iopub_thread
    return None


def ipykernel_queue(iopub_thread: t.Any) -> t.Any:
    """The deque ipykernel's ``IOPubThread.schedule`` appends to."""
    return iopub_thread._events


def really_send(iopub_thread: t.Any) -> t.Callable[..., None]:
    """The send of one message on the IOPub socket, by ipykernel (call it on its thread)."""
    return t.cast("t.Callable[..., None]", iopub_thread._really_send)


def exempt_thread_idents(kernel: t.Any, iopub_thread: t.Any) -> frozenset[int | None]:
    """Idents of ipykernel's own threads: the IOPub thread, control, the shell channel."""
    idents = frozenset(
        getattr(getattr(kernel, name, None), "ident", None) for name in EXEMPT_KERNEL_THREADS
    )
    return idents | {iopub_thread.thread.ident}


def shutting_down(kernel: t.Any) -> bool:
    """Whether the kernel was asked to shut down."""
    return getattr(kernel, "_shutdown_message", None) is not None
