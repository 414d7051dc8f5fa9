"""Cell hooks belong to cells: what surrounds a comm callback while a cell may be running.

The ``comm`` package fires the shell's ``pre_execute`` and ``post_execute``
events around every ``on_msg`` callback, so that a figure the callback draws
is shown (IPython's inline backend flushes every pending figure on
``post_execute``). Those events are the cell's: fired while a cell runs, on
a subshell thread (ipykernel 7) or from inside a cell that awaits or waits,
they flush the cell's half-drawn figure under the comm message's parent, where
the frontend files it under no cell.

``CellHooks.scope()`` fires them only when no cell is running. While one runs
it fires nothing; figures the callback itself created are shown under the
comm message's parent when that is safe (the running cell is paused on this
thread, so nobody else is drawing), and the sender's held widget updates are
flushed, as ``post_execute`` would have done. Cells are tracked with the
shell's ``pre_run_cell`` / ``post_run_cell`` events, per thread.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import typing as t

from ..protocol.callbacks import fire_cell_hooks

if t.TYPE_CHECKING:
    from ..delivery.sender import CommSender

logger = logging.getLogger("kernel_comm_ext")


class RunningCells:
    """Which threads are running a cell right now (counted from the shell's events)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, int] = {}

    def started(self, *_args: t.Any) -> None:
        """A cell starts on this thread (the ``pre_run_cell`` event)."""
        ident = threading.get_ident()
        with self._lock:
            self._running[ident] = self._running.get(ident, 0) + 1

    def ended(self, *_args: t.Any) -> None:
        """A cell ends on this thread (the ``post_run_cell`` event)."""
        ident = threading.get_ident()
        with self._lock:
            # The cell that loaded the extension started before it was counted.
            count = self._running.get(ident, 0) - 1
            if count > 0:
                self._running[ident] = count
            else:
                self._running.pop(ident, None)

    def any(self) -> bool:
        """Whether a cell runs (or is paused in an await or a wait) on any thread."""
        return bool(self._running)

    def elsewhere(self) -> bool:
        """Whether a cell runs on a thread other than the calling one."""
        ident = threading.get_ident()
        with self._lock:
            return any(thread != ident for thread in self._running)


class CellHooks:
    """The callback scope of a kernel's comm callbacks, aware of the running cell."""

    def __init__(self, shell: t.Any, sender: CommSender) -> None:
        self.shell = shell
        self.sender = sender
        self.cells = RunningCells()
        self._events = getattr(shell, "events", None)

    def start(self) -> None:
        """Start counting cells (on install)."""
        if self._events is not None:
            self._events.register("pre_run_cell", self.cells.started)
            self._events.register("post_run_cell", self.cells.ended)

    def stop(self) -> None:
        """Stop counting cells (on uninstall)."""
        if self._events is None:
            return
        for name, callback in (
            ("pre_run_cell", self.cells.started),
            ("post_run_cell", self.cells.ended),
        ):
            with contextlib.suppress(ValueError):
                self._events.unregister(name, callback)

    @contextlib.contextmanager
    def scope(self) -> t.Iterator[None]:
        """Surround one ``on_msg`` callback."""
        if not self.cells.any():
            with fire_cell_hooks():
                yield
            return
        before = _figure_managers()
        try:
            yield
        finally:
            if not self.cells.elsewhere():
                try:
                    _show_new_figures(before)
                except Exception as exc:
                    logger.error("Could not show the figures of a comm callback", exc_info=exc)
            self.sender.flush()


def _pyplot_inline() -> t.Any:
    """Matplotlib's figure registry if pyplot is in use with the inline backend, else None."""
    pylab_helpers = sys.modules.get("matplotlib._pylab_helpers")
    matplotlib = sys.modules.get("matplotlib")
    if pylab_helpers is None or matplotlib is None or "matplotlib.pyplot" not in sys.modules:
        return None
    if "inline" not in str(matplotlib.get_backend()):
        return None
    return pylab_helpers.Gcf


def _figure_managers() -> set[t.Any] | None:
    gcf = _pyplot_inline()
    return None if gcf is None else set(gcf.get_all_fig_managers())


def _show_new_figures(before: set[t.Any] | None) -> None:
    """Show (and close, as the inline backend does) the figures a callback created."""
    gcf = _pyplot_inline()
    if gcf is None:
        return
    known = before or set()
    new = [m for m in gcf.get_all_fig_managers() if m not in known]
    if not new:
        return
    from IPython import display as ipython_display  # noqa: PLC0415
    from matplotlib import pyplot  # noqa: PLC0415
    from matplotlib_inline.config import InlineBackend  # noqa: PLC0415

    display = t.cast(t.Any, ipython_display).display
    close = InlineBackend.instance().close_figures
    for manager in new:
        figure = manager.canvas.figure
        display(figure)
        if close:
            pyplot.close(figure)
