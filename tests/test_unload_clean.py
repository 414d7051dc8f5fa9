"""Unloading leaves nothing of the package in the shell; loading twice changes nothing.

Each test looks, in a real kernel, at every place IPython keeps what an
extension adds: ``shell.configurables`` (where ``%config`` looks, and where
IPython's ``Magics`` put themselves), the magics registry and tables, and the
shell's event callbacks; and at the package's logger, whose records go to the
kernel's log while loaded.
"""

from __future__ import annotations

import time
import typing as t

from .frontend import Frontend

SNAPSHOT = """
import logging
import kernel_comm_ext as _kce
_sh = get_ipython()

def _of_package(obj):
    obj = getattr(obj, "__self__", obj)
    return (getattr(type(obj), "__module__", "") or "").startswith("kernel_comm_ext") or (
        getattr(obj, "__module__", "") or ""
    ).startswith("kernel_comm_ext")

def _snapshot():
    magics = _sh.magics_manager
    return {
        "configurables": [id(c) for c in _sh.configurables],
        "registry": sorted((name, id(m)) for name, m in magics.registry.items()),
        "line_magics": sorted((name, id(f)) for name, f in magics.magics["line"].items()),
        "cell_magics": sorted((name, id(f)) for name, f in magics.magics["cell"].items()),
        "callbacks": {k: [id(f) for f in v] for k, v in _sh.events.callbacks.items()},
        "log_handlers": [id(h) for h in logging.getLogger("kernel_comm_ext").handlers],
        "of_package": sorted(
            [f"configurable {type(c).__name__}" for c in _sh.configurables if _of_package(c)]
            + [f"registry {n}" for n, m in magics.registry.items() if _of_package(m)]
            + [
                f"{kind} magic {n}"
                for kind in ("line", "cell")
                for n, f in magics.magics[kind].items()
                if _of_package(f)
            ]
            + [
                f"callback {k} {getattr(f, '__qualname__', f)}"
                for k, v in _sh.events.callbacks.items()
                for f in v
                if _of_package(f)
            ]
            + [
                f"log handler {type(h).__name__}"
                for h in logging.getLogger("kernel_comm_ext").handlers
                if _of_package(h)
            ]
        ),
    }

# Reading IPython's magics registry loads its lazily declared magics: load them first.
_snapshot()
"""


def _snapshot(fe: Frontend) -> dict[str, t.Any]:
    value = fe.eval("_snapshot()")
    assert isinstance(value, dict)
    return value


def test_unload_leaves_nothing_of_the_package_in_the_shell(kernel: Frontend) -> None:
    kernel.run(SNAPSHOT)
    before = _snapshot(kernel)
    assert before["of_package"] == []
    kernel.run("%load_ext kernel_comm_ext")
    loaded = _snapshot(kernel)
    assert "configurable CommMagics" in loaded["of_package"]
    assert "configurable KernelCommManager" in loaded["of_package"]
    assert "log handler _KernelLogHandler" in loaded["of_package"]
    kernel.run("%unload_ext kernel_comm_ext")
    after = _snapshot(kernel)
    assert after["of_package"] == []
    assert after == before


def test_repeated_load_and_unload_cycles_leave_the_shell_as_it_was(kernel: Frontend) -> None:
    kernel.run(SNAPSHOT)
    before = _snapshot(kernel)
    for _ in range(3):
        kernel.run("%load_ext kernel_comm_ext")
        kernel.run("%unload_ext kernel_comm_ext")
    assert _snapshot(kernel) == before


def test_a_second_load_is_a_no_op(kernel: Frontend) -> None:
    kernel.run(SNAPSHOT)
    kernel.run("%load_ext kernel_comm_ext")
    kernel.run("_manager = get_ipython().kernel.comm_manager")
    loaded = _snapshot(kernel)
    kernel.run("_kce.load_ipython_extension(_sh)\n_kce.load_ipython_extension(_sh)")
    assert _snapshot(kernel) == loaded
    assert kernel.eval("get_ipython().kernel.comm_manager is _manager")
    # %load_ext of a loaded extension: IPython itself does nothing.
    kernel.run("%load_ext kernel_comm_ext")
    assert _snapshot(kernel) == loaded
    kernel.run("%unload_ext kernel_comm_ext")
    assert _snapshot(kernel)["of_package"] == []


def test_the_packages_log_lines_go_to_the_kernels_log_not_to_the_cell(kernel: Frontend) -> None:
    """Python's last-resort handler would print them into whatever cell is running."""
    kernel.run("%load_ext kernel_comm_ext")
    execution = kernel.execute(
        "import logging\nlogging.getLogger('kernel_comm_ext').error('probe of the log route')"
    )
    assert "probe of the log route" not in execution.stderr
    deadline = time.monotonic() + 5  # the kernel's log is a file the kernel flushes
    while "probe of the log route" not in kernel.kernel_log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "[kernel_comm_ext] ERROR | probe of the log route" in kernel.kernel_log()
