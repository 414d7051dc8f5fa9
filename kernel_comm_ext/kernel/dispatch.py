"""Where comm callbacks run: as ipykernel routes them, or always on the kernel's main loop.

ipykernel 7 hands a frontend's comm message to the subshell it is addressed
to (JupyterLab sends them over subshells by default), whose thread runs the
callback at once, concurrently with the cell on the main thread. With
``callback_dispatch = "main"`` a comm message handled on any other thread is
queued here and handled on the kernel's main event loop instead, in arrival
order: between cells, while an async cell awaits, or inside a wait of
``kernel_comm_ext.waiting`` (which drains the queue itself).
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import functools
import logging
import sys
import threading
import typing as t

logger = logging.getLogger("kernel_comm_ext")

Handler = t.Callable[[t.Any, t.Any, dict[str, t.Any]], None]

DISPATCH_MODES = ("main", "routed")


def main_thread_of(kernel: t.Any) -> threading.Thread:
    """The thread that runs the kernel's main event loop (and its cells)."""
    shell_channel = getattr(kernel, "shell_channel_thread", None)
    parent = getattr(shell_channel, "parent_thread", None)
    return parent if isinstance(parent, threading.Thread) else threading.main_thread()


def run_as_request(
    kernel: t.Any, idents: t.Any, msg: dict[str, t.Any], run: t.Callable[[], None]
) -> None:
    """Run ``run()`` with ``msg`` as the shell's parent request, then put the parent back.

    Output of ``run()`` goes out under ``msg``; the parent in force before
    (the running cell's, if any) is restored, so the cell's own later output
    still reaches the cell.
    """

    def in_context() -> None:
        saved_parent = kernel.get_parent("shell")
        saved_ident = _parent_ident(kernel)
        kernel.set_parent(idents, msg, channel="shell")
        try:
            run()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            kernel.set_parent(saved_ident, saved_parent, channel="shell")

    contextvars.copy_context().run(in_context)


def _parent_ident(kernel: t.Any) -> t.Any:
    ident_var = getattr(kernel, "_shell_parent_ident", None)
    if isinstance(ident_var, contextvars.ContextVar):
        getter = getattr(kernel, "_get_shell_context_var", None)
        with contextlib.suppress(LookupError, KeyError):
            return getter(ident_var) if getter is not None else ident_var.get()
        return None
    idents = getattr(kernel, "_parent_ident", None)  # ipykernel 6: a dict per channel
    return idents.get("shell") if isinstance(idents, dict) else idents


def _running(io_loop: t.Any) -> bool:
    asyncio_loop = getattr(io_loop, "asyncio_loop", None)
    return asyncio_loop is None or bool(asyncio_loop.is_running())


class MainLoopDispatch:
    """Runs comm handlers on the kernel's main loop when told to (``callback_dispatch``)."""

    def __init__(self, kernel: t.Any, mode: str = "main") -> None:
        self.kernel = kernel
        self.mode = mode
        self.main_thread = main_thread_of(kernel)
        self._queue: collections.deque[
            tuple[Handler, t.Any, t.Any, dict[str, t.Any], threading.Event]
        ] = collections.deque()
        self._closed = False
        self._lock = threading.Lock()
        self.forwarded = 0

    def handle(self, handler: Handler, stream: t.Any, idents: t.Any, msg: dict[str, t.Any]) -> None:
        """Run ``handler(stream, idents, msg)`` here, or on the main loop and wait for it.

        The calling (subshell) thread waits until the main loop has handled
        the message, so ipykernel publishes the message's idle status after
        the callback's output, as a frontend expects (JupyterLab's Output
        widget captures a message's output only until its idle), and the
        subshell's later messages keep their order.
        """
        if self.mode != "main" or threading.current_thread() is self.main_thread:
            handler(stream, idents, msg)
            return
        io_loop = getattr(self.kernel, "io_loop", None)
        if io_loop is None or self._closed:
            handler(stream, idents, msg)
            return
        done = threading.Event()
        with self._lock:
            self._queue.append((handler, stream, idents, msg, done))
            self.forwarded += 1
        io_loop.add_callback(self.drain)
        while not done.wait(0.5):
            if self._closed or not _running(io_loop):
                return  # unloaded, or the kernel is shutting down: never hang its subshells

    def close(self) -> None:
        """Stop waiting for the main loop (on uninstall): queued messages are handled here."""
        self._closed = True
        self._handle_queued(lambda handle, idents, msg: handle(), "at unload")

    def pending(self) -> int:
        """How many forwarded messages wait for the main loop."""
        return len(self._queue)

    def drain(self) -> None:
        """Handle every queued message, in arrival order (on the main thread)."""
        self._handle_queued(
            lambda handle, idents, msg: run_as_request(self.kernel, idents, msg, handle),
            "on the main loop",
        )

    def _handle_queued(
        self,
        run: t.Callable[[t.Callable[[], None], t.Any, t.Any], None],
        where: str,
    ) -> None:
        """Take queued messages in order and ``run(handle, idents, msg)`` each; wake its sender."""
        while True:
            with self._lock:
                if not self._queue:
                    return
                handler, stream, idents, msg, done = self._queue.popleft()
            try:
                run(functools.partial(handler, stream, idents, msg), idents, msg)
            except Exception as exc:
                logger.error("Exception in a comm message handled %s", where, exc_info=exc)
            finally:
                done.set()
