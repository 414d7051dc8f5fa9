"""Unit tests of the callback scope's cell tracking (small fakes; the kernels are elsewhere).

The end-to-end behaviour is in test_running_cell.py; these pin the rules:
cell hooks fire only when no cell runs, and otherwise the held updates are
still flushed.
"""

from __future__ import annotations

import threading
import typing as t

import IPython
import pytest

from kernel_comm_ext.kernel.cell_hooks import CellHooks, RunningCells


class Events:
    def __init__(self) -> None:
        self.fired: list[str] = []
        self.callbacks: dict[str, list[t.Callable[..., t.Any]]] = {}

    def register(self, name: str, callback: t.Callable[..., t.Any]) -> None:
        self.callbacks.setdefault(name, []).append(callback)

    def unregister(self, name: str, callback: t.Callable[..., t.Any]) -> None:
        self.callbacks[name].remove(callback)

    def trigger(self, name: str, *args: t.Any) -> None:
        self.fired.append(name)
        for callback in self.callbacks.get(name, []):
            callback(*args)


class Shell:
    def __init__(self) -> None:
        self.events = Events()


class Sender:
    def __init__(self) -> None:
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1


def on_thread(run: t.Callable[[], t.Any]) -> t.Any:
    result: list[t.Any] = []
    thread = threading.Thread(target=lambda: result.append(run()))
    thread.start()
    thread.join()
    return result[0]


def test_running_cells_are_counted_per_thread() -> None:
    cells = RunningCells()
    assert not cells.any()
    cells.started()
    assert cells.any()
    assert not cells.elsewhere()
    assert on_thread(cells.elsewhere)
    cells.ended()
    assert not cells.any()
    cells.ended()  # the cell that loaded the extension ends uncounted
    assert not cells.any()


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> tuple[CellHooks, Shell, Sender]:
    shell, sender = Shell(), Sender()
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    cell_hooks = CellHooks(shell, t.cast(t.Any, sender))
    cell_hooks.start()
    return cell_hooks, shell, sender


def test_hooks_fire_when_no_cell_runs(hooks: tuple[CellHooks, Shell, Sender]) -> None:
    cell_hooks, shell, _ = hooks
    with cell_hooks.scope():
        shell.events.fired.append("callback")
    assert shell.events.fired == ["pre_execute", "callback", "post_execute"]


def test_hooks_do_not_fire_while_a_cell_runs_elsewhere(
    hooks: tuple[CellHooks, Shell, Sender],
) -> None:
    cell_hooks, shell, sender = hooks
    shell.events.trigger("pre_run_cell")  # a cell starts on this (the "main") thread

    def callback_on_a_subshell() -> None:
        with cell_hooks.scope():
            shell.events.fired.append("callback")

    on_thread(callback_on_a_subshell)
    assert shell.events.fired == ["pre_run_cell", "callback"]
    assert sender.flushes == 1
    shell.events.trigger("post_run_cell")
    with cell_hooks.scope():
        pass
    assert shell.events.fired[-2:] == ["pre_execute", "post_execute"]


def test_hooks_do_not_fire_inside_a_paused_cell(hooks: tuple[CellHooks, Shell, Sender]) -> None:
    cell_hooks, shell, sender = hooks
    shell.events.trigger("pre_run_cell")
    with cell_hooks.scope():
        pass
    assert shell.events.fired == ["pre_run_cell"]
    assert sender.flushes == 1


def test_stop_unregisters(hooks: tuple[CellHooks, Shell, Sender]) -> None:
    cell_hooks, shell, _ = hooks
    cell_hooks.stop()
    shell.events.trigger("pre_run_cell")
    assert not cell_hooks.cells.any()
