"""Waiting for the page inside a running cell: a widget change, a comm message, a future.

``wait_for_change(widget, "value")``, ``wait_for_msg(comm)`` and
``wait_for_result(future)`` return what the page sent. Called from a
coroutine (an async cell, an ``async def``) they return an awaitable; called
from plain code (a synchronous cell) they block. Both end at the ``timeout``
with ``WaitTimeout`` and at an interrupt (``interrupt_request``, SIGINT) with
KeyboardInterrupt.

The waiting cell runs on the kernel's main thread, which is also where the
kernel reads the frontend's shell messages that are not addressed to a
subshell. For the length of a wait, comm messages on that stream are taken out
and handled at once (in arrival order, each with its message as parent);
every other message goes on to ipykernel as before, in its order. A
synchronous wait reads the stream itself (pyzmq's ``ZMQStream.flush``), and
runs the comm messages ``callback_dispatch = "main"`` queued for the main loop.
Comm messages addressed to a subshell are handled there (ipykernel 7).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import signal
import sys
import threading
import time
import typing as t

from .dispatch import main_thread_of, run_as_request

COMM_MSG_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})
_POLL_SECONDS = 0.02
_COROUTINE_FLAGS = inspect.CO_COROUTINE | inspect.CO_ITERABLE_COROUTINE | inspect.CO_ASYNC_GENERATOR


class WaitTimeout(TimeoutError):
    """The page did not answer within the wait's timeout."""


class WaitUnsupported(RuntimeError):
    """The wait cannot run in this kernel without hanging; the message says why."""


class _Waiter:
    """A one-shot result that any thread may set, and sync or async code may wait for."""

    def __init__(self) -> None:
        self._event = threading.Event()
        # Reentrant: an interrupt's signal handler may resolve while this thread holds it.
        self._lock = threading.RLock()
        self._value: t.Any = None
        self._error: BaseException | None = None
        self._futures: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def done(self) -> bool:
        return self._event.is_set()

    def resolve(self, value: t.Any = None, error: BaseException | None = None) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._value, self._error = value, error
            self._event.set()
            futures, self._futures = self._futures, []
        for loop, future in futures:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_set_done, future)

    def result(self) -> t.Any:
        if self._error is not None:
            raise self._error
        return self._value

    def future(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if not self._event.is_set():
                self._futures.append((loop, future))
                return future
        future.set_result(None)
        return future


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# the public API


def wait_for_change(
    widget: t.Any,
    name: str = "value",
    *,
    timeout: float | None = None,
    blocking: bool | None = None,
) -> t.Any:
    """The next value of trait ``name`` of ``widget`` (an ipywidgets widget, any HasTraits).

    Returns the new value; awaitable when called from a coroutine, blocking
    otherwise (``blocking`` forces either). Raises ``WaitTimeout`` after
    ``timeout`` seconds and KeyboardInterrupt when the kernel is interrupted.
    """
    waiter = _Waiter()

    def changed(change: dict[str, t.Any]) -> None:
        waiter.resolve(change["new"])

    widget.observe(changed, names=name)
    return _wait(
        waiter, timeout, _wants_await(blocking), lambda: widget.unobserve(changed, names=name)
    )


def wait_for_msg(
    comm: t.Any, *, timeout: float | None = None, blocking: bool | None = None
) -> dict[str, t.Any]:
    """The next ``comm_msg`` the frontend sends on ``comm`` (the whole message).

    The comm's own ``on_msg`` callback still gets the message first. Works for
    kernel-comm-ext's comms and for the ``comm`` package's. Awaitable or
    blocking as ``wait_for_change``.
    """
    waiter = _Waiter()
    previous = getattr(comm, "_msg_callback", None)

    def on_msg(msg: dict[str, t.Any]) -> t.Any:
        try:
            return previous(msg) if previous is not None else None
        finally:
            waiter.resolve(msg)

    comm.on_msg(on_msg)

    def restore() -> None:
        if getattr(comm, "_msg_callback", None) is on_msg:
            comm.on_msg(previous)

    return t.cast(dict[str, t.Any], _wait(waiter, timeout, _wants_await(blocking), restore))


def wait_for_result(
    future: asyncio.Future[t.Any] | concurrent.futures.Future[t.Any],
    *,
    timeout: float | None = None,
    blocking: bool | None = None,
) -> t.Any:
    """The result of ``future``, which a comm callback resolves (asyncio or concurrent).

    Awaitable or blocking as ``wait_for_change``; the future's exception is raised.
    """
    waiter = _Waiter()

    def done(f: t.Any) -> None:
        if f.cancelled():
            waiter.resolve(error=asyncio.CancelledError())
        elif f.exception() is not None:
            waiter.resolve(error=f.exception())
        else:
            waiter.resolve(f.result())

    if isinstance(future, concurrent.futures.Future):
        future.add_done_callback(done)
        poll = None
    else:
        # asyncio runs done-callbacks on its loop, which a blocking wait holds up.
        def poll() -> None:
            if future.done():
                done(future)

    return _wait(waiter, timeout, _wants_await(blocking), lambda: None, poll)


# waiting


def _wants_await(blocking: bool | None) -> bool:
    """Whether the public function's caller is a coroutine (so it gets an awaitable)."""
    if blocking is not None:
        return not blocking
    caller = sys._getframe(2)
    return bool(caller.f_code.co_flags & _COROUTINE_FLAGS)


def _wait(
    waiter: _Waiter,
    timeout: float | None,
    awaitable: bool,
    cleanup: t.Callable[[], None],
    poll: t.Callable[[], None] | None = None,
) -> t.Any:
    if awaitable:
        return _await(waiter, timeout, cleanup, poll)
    try:
        return _block(waiter, timeout, poll)
    finally:
        cleanup()


def _block(waiter: _Waiter, timeout: float | None, poll: t.Callable[[], None] | None) -> t.Any:
    deadline = None if timeout is None else time.monotonic() + timeout
    with _ShellPump.for_this_thread() as pump, _interrupt_raises():
        while True:
            if poll is not None:
                poll()
            if waiter.done():
                return waiter.result()
            remaining = _POLL_SECONDS if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f"no answer from the page within {timeout} s")
            slice_ = min(remaining, _POLL_SECONDS)
            if pump is None:
                waiter._event.wait(slice_)
            else:
                pump.pump(slice_)


async def _await(
    waiter: _Waiter,
    timeout: float | None,
    cleanup: t.Callable[[], None],
    poll: t.Callable[[], None] | None,
) -> t.Any:
    loop = asyncio.get_running_loop()
    interrupted = _Waiter()
    try:
        with _ShellPump.for_this_thread(), _interrupt_resolves(loop, interrupted):
            done = waiter.future(loop)
            stop = interrupted.future(loop)
            waits: set[asyncio.Future[t.Any]] = {done, stop}
            deadline = None if timeout is None else loop.time() + timeout
            while not waiter.done() and not interrupted.done():
                if poll is not None:
                    poll()
                    if waiter.done():
                        break
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    raise WaitTimeout(f"no answer from the page within {timeout} s")
                step = _POLL_SECONDS if poll is not None else remaining
                if step is not None and remaining is not None:
                    step = min(step, remaining)
                await asyncio.wait(waits, timeout=step, return_when=asyncio.FIRST_COMPLETED)
            if interrupted.done() and not waiter.done():
                raise KeyboardInterrupt
            return waiter.result()
    finally:
        cleanup()


# interrupts


@contextlib.contextmanager
def _interrupt_raises() -> t.Iterator[None]:
    """SIGINT raises KeyboardInterrupt in a blocking wait (even inside an async cell)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _interrupt_resolves(loop: asyncio.AbstractEventLoop, interrupted: _Waiter) -> t.Iterator[None]:
    """SIGINT ends an awaited wait (ipykernel would cancel the whole cell instead)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(_signum: int, _frame: t.Any) -> None:
        interrupted.resolve()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# the kernel's main shell stream


_active = threading.local()


class _ShellPump:
    """Handles the comm messages of the kernel's main shell stream while a cell waits."""

    def __init__(self, kernel: t.Any, stream: t.Any) -> None:
        self.kernel = kernel
        self.stream = stream
        self.manager = getattr(kernel, "comm_manager", None)
        self._original: t.Callable[..., t.Any] | None = None
        self._poller: t.Any = None

    @classmethod
    @contextlib.contextmanager
    def for_this_thread(cls) -> t.Iterator[_ShellPump | None]:
        """The pump of this wait, or None when the wait needs none (not the kernel's thread)."""
        kernel = _kernel()
        if kernel is None or threading.current_thread() is not main_thread_of(kernel):
            yield None
            return
        if getattr(_active, "pump", None) is not None:
            raise WaitUnsupported(
                "kernel_comm_ext: a wait cannot start inside a comm callback that another"
                " wait is running; wait in the cell instead."
            )
        stream = _main_shell_stream(kernel)
        if stream is None or not hasattr(stream, "_recv_callback"):
            raise WaitUnsupported(
                "kernel_comm_ext: this ipykernel reads its shell messages in a way the wait"
                f" does not know (ipykernel {_ipykernel_version()}), so the page's answer"
                " could not reach a waiting cell."
            )
        pump = cls(kernel, stream)
        pump.start()
        _active.pump = pump
        try:
            yield pump
        finally:
            _active.pump = None
            pump.stop()

    def start(self) -> None:
        self._original = self.stream._recv_callback
        self.stream.on_recv(self._filter, copy=False)
        self._take_queued()

    def stop(self) -> None:
        if self._original is not None:
            self.stream.on_recv(self._original, copy=False)

    def pump(self, seconds: float) -> None:
        """Wait up to ``seconds`` for shell messages and handle what came (blocking waits)."""
        import zmq  # noqa: PLC0415

        dispatch = getattr(self.manager, "dispatch", None)
        if dispatch is not None:
            dispatch.drain()
        if self._poller is None:
            self._poller = zmq.Poller()
            self._poller.register(self.stream.socket, zmq.POLLIN)
        if self._poller.poll(int(seconds * 1000)):
            self.stream.flush(zmq.POLLIN)
        if dispatch is not None:
            dispatch.drain()

    def _filter(self, frames: list[t.Any]) -> t.Any:
        session = self.kernel.session
        try:
            idents, rest = session.feed_identities(frames, copy=False)
            header = session.deserialize(rest, content=False, copy=False)["header"]
            is_comm = header.get("msg_type") in COMM_MSG_TYPES
        except Exception:
            is_comm = False  # ipykernel logs it, as it would without the wait
        if not is_comm:
            assert self._original is not None
            return self._original(frames)
        self._handle_comm(idents, rest)
        return None

    def _handle_comm(self, idents: t.Any, rest: list[t.Any]) -> None:
        kernel = self.kernel
        try:
            msg = kernel.session.deserialize(rest, content=True, copy=False)
        except Exception as exc:
            kernel.log.error("Invalid comm message during a wait", exc_info=exc)
            return
        handler = kernel.shell_handlers.get(msg["header"]["msg_type"])
        if handler is None:
            return
        stream = getattr(kernel, "shell_stream", None)
        try:
            run_as_request(kernel, idents, msg, functools.partial(handler, stream, idents, msg))
        except Exception as exc:
            kernel.log.error("Exception in a comm handler during a wait", exc_info=exc)

    def _take_queued(self) -> None:
        """Handle the comm messages ipykernel 6 already queued; keep the rest in order."""
        queue = getattr(self.kernel, "msg_queue", None)
        if queue is None or not hasattr(queue, "get_nowait"):
            return
        items = []
        while True:
            try:
                items.append(queue.get_nowait())
            except Exception:
                break
        for item in items:
            _, _, args = item
            if args and isinstance(args[0], list) and self._is_comm(args[0]):
                idents, rest = self.kernel.session.feed_identities(args[0], copy=False)
                self._handle_comm(idents, rest)
            else:
                queue.put_nowait(item)

    def _is_comm(self, frames: list[t.Any]) -> bool:
        session = self.kernel.session
        try:
            _, rest = session.feed_identities(frames, copy=False)
            header = session.deserialize(rest, content=False, copy=False)["header"]
        except Exception:
            return False
        return header.get("msg_type") in COMM_MSG_TYPES


def _kernel() -> t.Any:
    try:
        from IPython import get_ipython  # noqa: PLC0415
    except ImportError:
        return None
    shell = get_ipython()
    return getattr(shell, "kernel", None)


def _main_shell_stream(kernel: t.Any) -> t.Any:
    """The stream on which the kernel's main thread receives its shell messages."""
    shell_channel = getattr(kernel, "shell_channel_thread", None)
    if shell_channel is not None:  # ipykernel 7: an inproc pair from the shell channel thread
        pair = getattr(shell_channel.manager, "_shell_channel_to_main", None)
        return getattr(pair, "to_stream", None)
    return getattr(kernel, "shell_stream", None)


def _ipykernel_version() -> str:
    module = sys.modules.get("ipykernel")
    return str(getattr(module, "__version__", "unknown"))
