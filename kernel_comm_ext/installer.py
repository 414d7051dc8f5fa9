"""Installing kernel-comm-ext into a live ipykernel, and taking it out again.

The integration surface is small and all of it is swapped here:

- ``kernel.comm_manager``;
- the kernel's shell handlers ``comm_open``, ``comm_msg``, ``comm_close``;
- the ``comm`` package's hooks ``comm.create_comm`` and ``comm.get_comm_manager``,
  which ipywidgets and other widget libraries call;
- the manager's place in ``shell.configurables`` (so ``%config`` reaches it);
- ``publish_msg`` and ``__del__`` of ipykernel's own comm base class, so comms
  made as ``ipykernel.comm.Comm`` (pyviz_comms does) also send through the
  sender (``kernel/ipykernel_comms.py``);
- where nothing handles the package's ``kernel_comm_ext`` logger, a handler
  that passes its records to the kernel's log (otherwise Python's last-resort
  handler would print them to ``sys.stderr``, which in a kernel is the output
  of whatever cell is running).

Every comm and target of the manager being replaced moves over, and moves back
on uninstall, so widgets already on the page keep working through both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import typing as t

import comm as comm_hooks

from .kernel.ipykernel_comms import IPykernelComms
from .kernel.manager import KernelCommManager
from .protocol.comm import BaseComm
from .protocol.manager import CommManager

COMM_MSG_TYPES = ("comm_open", "comm_msg", "comm_close")

logger = logging.getLogger("kernel_comm_ext")


@dataclasses.dataclass
class ReplacedParts:
    """What installing replaced in a kernel, to put back on uninstall."""

    manager: t.Any
    create_comm: t.Callable[..., t.Any]
    get_comm_manager: t.Callable[[], t.Any]
    handlers: dict[str, t.Any]
    #: Whether the replaced manager was in ``shell.configurables`` (ipykernel's is not).
    manager_configurable: bool = False


@dataclasses.dataclass
class Installation:
    """kernel-comm-ext installed in one kernel: our manager and what it replaced."""

    kernel: t.Any
    shell: t.Any
    manager: KernelCommManager
    replaced: ReplacedParts
    #: The routing of ipykernel's own comm classes through our sender.
    ipykernel_comms: IPykernelComms | None = None
    #: The handler passing the package's log records to the kernel's log, if added.
    log_handler: logging.Handler | None = None


def installation_of(kernel: t.Any) -> Installation | None:
    """The installation active in ``kernel``, if any."""
    manager = getattr(kernel, "comm_manager", None)
    if isinstance(manager, KernelCommManager):
        return t.cast("Installation | None", getattr(manager, "installation", None))
    return None


def install(shell: t.Any) -> Installation | None:
    """Install into the kernel of ``shell``; a no-op (returning the existing one) if installed."""
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return None
    existing = installation_of(kernel)
    if existing is not None:
        return existing
    previous = getattr(kernel, "comm_manager", None)
    manager = KernelCommManager(parent=shell, kernel=kernel)
    replaced = ReplacedParts(
        manager=previous,
        create_comm=comm_hooks.create_comm,
        get_comm_manager=comm_hooks.get_comm_manager,
        handlers={name: kernel.shell_handlers.get(name) for name in COMM_MSG_TYPES},
        manager_configurable=any(c is previous for c in getattr(shell, "configurables", ())),
    )
    installation = Installation(kernel=kernel, shell=shell, manager=manager, replaced=replaced)
    manager.installation = installation

    _move_registrations(previous, manager)
    comm_hooks.create_comm = manager.create_comm
    comm_hooks.get_comm_manager = manager.get_comm_manager
    for name in COMM_MSG_TYPES:
        kernel.shell_handlers[name] = getattr(manager, name)
    kernel.comm_manager = manager
    _replace_configurable(shell, previous, manager)
    installation.log_handler = _log_to_kernel(kernel)
    installation.ipykernel_comms = IPykernelComms(kernel, manager.sender)
    if not installation.ipykernel_comms.install():
        manager.log.info("kernel-comm-ext: ipykernel's own comm classes keep their sending")
    # A comm another thread opened on the old manager during the swap.
    _move_registrations(previous, manager)
    manager.iopub.start()
    manager.start_callbacks()
    manager.log.info(
        "kernel-comm-ext installed: %d comms and %d targets moved over",
        len(manager.comms),
        len(manager.targets),
    )
    return installation


def uninstall(shell: t.Any) -> bool:
    """Restore what ``install`` replaced and move every comm and target back.

    Returns False when the extension is not installed in that kernel.
    """
    kernel = getattr(shell, "kernel", None)
    installation = installation_of(kernel) if kernel is not None else None
    if installation is None:
        return False
    kernel, manager, replaced = installation.kernel, installation.manager, installation.replaced
    manager.sender.flush()
    comm_hooks.create_comm = replaced.create_comm
    comm_hooks.get_comm_manager = replaced.get_comm_manager
    for name, handler in replaced.handlers.items():
        if handler is None:
            kernel.shell_handlers.pop(name, None)
        else:
            kernel.shell_handlers[name] = handler
    kernel.comm_manager = replaced.manager
    _replace_configurable(
        shell, manager, replaced.manager if replaced.manager_configurable else None
    )
    _move_registrations(manager, replaced.manager)
    manager.stop_callbacks()
    if installation.ipykernel_comms is not None:
        installation.ipykernel_comms.uninstall()
    manager.sender.close()
    manager.iopub.stop()
    if installation.log_handler is not None:
        logger.removeHandler(installation.log_handler)
    manager.installation = None
    return True


class _KernelLogHandler(logging.Handler):
    """Passes records of the package's logger to the kernel's log, with its handlers."""

    def __init__(self, kernel_log: logging.Logger) -> None:
        super().__init__()
        self._kernel_log = kernel_log

    def emit(self, record: logging.LogRecord) -> None:
        self._kernel_log.handle(record)


def _log_to_kernel(kernel: t.Any) -> logging.Handler | None:
    """Send the package's log records to ``kernel.log``, unless something handles them."""
    kernel_log = getattr(kernel, "log", None)
    if not isinstance(kernel_log, logging.Logger) or logger.hasHandlers():
        return None
    handler = _KernelLogHandler(kernel_log)
    logger.addHandler(handler)
    return handler


def _move_registrations(source: t.Any, destination: t.Any) -> None:
    """Move every comm and target of ``source`` into ``destination``."""
    if source is None or destination is None:
        return
    for comm_id, comm in list(source.comms.items()):
        if isinstance(destination, CommManager):
            destination.register_comm(comm)
        else:
            destination.comms[comm_id] = comm
            if isinstance(comm, BaseComm):
                comm._manager = None
        if isinstance(source, CommManager):
            with contextlib.suppress(KeyError):  # closed meanwhile by another thread
                source.unregister_comm(comm)
        else:
            source.comms.pop(comm_id, None)
    for target_name, target in list(source.targets.items()):
        destination.targets[target_name] = target
        source.targets.pop(target_name, None)


def _replace_configurable(shell: t.Any, old: t.Any, new: t.Any) -> None:
    configurables = getattr(shell, "configurables", None)
    if configurables is None:
        return
    for index, configurable in enumerate(configurables):
        if configurable is old:
            if new is None:
                del configurables[index]
            else:
                configurables[index] = new
            return
    if new is not None:
        configurables.append(new)
