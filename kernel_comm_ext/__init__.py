"""kernel-comm-ext: a drop-in comm layer for ipykernel.

``%load_ext kernel_comm_ext`` replaces the running kernel's comm manager with
this package's (see ``installer.py`` for exactly what is swapped);
``%unload_ext kernel_comm_ext`` puts the previous one back. A running cell can
wait for the page with ``wait_for_change``, ``wait_for_msg`` and
``wait_for_result`` (``kernel/waiting.py``). Open comms and
registered targets move both ways. Loading also adds the ``%comm`` magic
(``tools/magic.py``); ``autoload.py`` loads the extension into every new kernel.
"""

from __future__ import annotations

import typing as t

from ._version import __version__
from .installer import install, installation_of, uninstall
from .kernel import KernelComm, KernelCommManager
from .kernel.waiting import (
    WaitTimeout,
    WaitUnsupported,
    wait_for_change,
    wait_for_msg,
    wait_for_result,
)
from .protocol import BaseComm, CommManager, CommStats
from .tools import magic

__all__ = [
    "BaseComm",
    "CommManager",
    "CommStats",
    "KernelComm",
    "KernelCommManager",
    "WaitTimeout",
    "WaitUnsupported",
    "__version__",
    "load_ipython_extension",
    "unload_ipython_extension",
    "wait_for_change",
    "wait_for_msg",
    "wait_for_result",
]

NOT_IN_A_KERNEL = (
    "kernel_comm_ext: this IPython is not running in a Jupyter kernel, so there is no comm"
    " layer to replace; nothing was changed."
)


def load_ipython_extension(ip: t.Any) -> None:
    """Install kernel-comm-ext into the kernel running ``ip`` (``%load_ext kernel_comm_ext``).

    A no-op when it is installed there already.
    """
    kernel = getattr(ip, "kernel", None)
    if kernel is None:
        print(NOT_IN_A_KERNEL)
        return
    if installation_of(kernel) is not None:
        return
    if install(ip) is not None:
        magic.register(ip)


def unload_ipython_extension(ip: t.Any) -> None:
    """Restore the kernel's previous comm layer (``%unload_ext kernel_comm_ext``).

    Nothing of the package stays in the shell: not in ``shell.configurables``,
    the magics registry, or the shell's event callbacks.
    """
    uninstall(ip)
    magic.unregister(ip)
