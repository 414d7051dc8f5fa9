"""Running user callbacks: plain functions or coroutine functions, errors reported, never raised.

A comm callback (target, ``on_msg``, ``on_close``) may return an awaitable; it
is then run as a task on the event loop of the thread that received the
message (the kernel's loop, or a subshell's), or, from a thread without a
running loop, on the host's loop. Tasks are created in arrival order, so they
start in arrival order. Exceptions, sync or async, go to the host's
``report_callback_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import typing as t

logger = logging.getLogger("kernel_comm_ext")


class CallbackHost(t.Protocol):
    """What runs callbacks: reports their errors and lends a loop to threads without one."""

    log: t.Any

    def report_callback_error(self, what: str, exc: BaseException) -> None:
        """Log (and possibly show) an exception raised by the callback named ``what``."""

    def callback_loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop for awaitables returned on a thread without a running loop."""


@contextlib.contextmanager
def fire_cell_hooks() -> t.Iterator[None]:
    """Fire the shell's ``pre_execute`` and ``post_execute`` events around a callback.

    What the ``comm`` package does around every ``comm_msg`` callback, so that
    figures it draws are shown (the inline backend flushes on ``post_execute``).
    """
    # IPython is imported only when a callback runs, and looked up on each
    # message, as the comm package does (code that patches it is obeyed).
    from IPython import get_ipython  # noqa: PLC0415

    shell = get_ipython()
    if shell:
        shell.events.trigger("pre_execute")
    yield
    if shell:
        shell.events.trigger("post_execute")


def run_callback(
    callback: t.Callable[..., t.Any],
    args: tuple[t.Any, ...],
    host: CallbackHost | None,
    what: t.Callable[[], str],
    on_failure: t.Callable[[], None] | None = None,
) -> bool:
    """Call ``callback(*args)``; schedule it if it returns an awaitable.

    ``what`` builds the callback's description, only when an error needs it.
    Returns False when the callback raised at once (``on_failure`` is not
    called then); ``on_failure`` runs when an awaitable it returned fails later.
    Without a host, a synchronous exception propagates to the caller.
    """
    if host is None:
        result = callback(*args)
    else:
        try:
            result = callback(*args)
        except Exception as exc:
            host.report_callback_error(what(), exc)
            return False
    if result is not None and inspect.isawaitable(result):
        _schedule(result, host, what, on_failure)
    return True


async def _await(awaitable: t.Awaitable[t.Any]) -> t.Any:
    return await awaitable


def _schedule(
    awaitable: t.Awaitable[t.Any],
    host: CallbackHost | None,
    what: t.Callable[[], str],
    on_failure: t.Callable[[], None] | None,
) -> None:
    def done(future: asyncio.Future[t.Any] | t.Any) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is None:
            return
        if host is None:
            logger.error("Exception in %s", what(), exc_info=exc)
        else:
            host.report_callback_error(what(), exc)
        if on_failure is not None:
            on_failure()

    context = contextvars.copy_context()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        loop = host.callback_loop() if host is not None else None
        if loop is None or loop.is_closed():
            message = "No event loop to run %s; the coroutine is not run."
            (host.log if host is not None else logger).error(message, what())
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            return
        concurrent_future = asyncio.run_coroutine_threadsafe(_await(awaitable), loop)
        concurrent_future.add_done_callback(done)
        return
    task = running.create_task(_await(awaitable))
    task.add_done_callback(done, context=context)
