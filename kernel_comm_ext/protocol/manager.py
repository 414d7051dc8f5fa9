"""CommManager: the registry of open comms and targets, and the handlers of frontend messages.

Registration (who is known) and dispatch (who is called) are kept apart, each
with its own error handling. Registration is thread-safe; the registry dicts can
be iterated from any thread while others open and close comms. The handlers
never raise: a malformed message, an unknown comm, a refused open or a failing
callback each give a log line, and open comms stay open.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import typing as t

import comm as comm_hooks

from .callbacks import fire_cell_hooks, run_callback
from .comm import BaseComm, MessageType
from .messages import MalformedMessage, check_comm_message, comm_id_of, wire_repr
from .registry import SnapshotDict

CommTargetCallback = t.Callable[[t.Any, MessageType], t.Any]

_logger = logging.getLogger("kernel_comm_ext")


class CommManager:
    """Registry of the kernel's comms and comm targets, and handler of comm messages."""

    #: Where log lines go; the kernel binding replaces it with the kernel's log.
    log: logging.Logger | logging.LoggerAdapter[t.Any] = _logger
    #: Most comms a frontend may have open at once; 0 means no limit.
    max_frontend_comms: int = 0

    def __init__(self, **kwargs: t.Any) -> None:
        super().__init__(**kwargs)
        self.comms: dict[str, t.Any] = SnapshotDict()
        self.targets: dict[str, CommTargetCallback] = SnapshotDict()
        self._registry_lock = threading.RLock()
        self._frontend_comms = 0

    # registration

    def register_target(self, target_name: str, f: CommTargetCallback | str) -> None:
        """Register ``f`` to be called as ``f(comm, msg)`` when a frontend opens ``target_name``.

        ``f`` is a callable (function or coroutine function) or the dotted
        import string of one. This is kernel-side code; names from the wire are
        never imported.
        """
        self.targets[target_name] = _import_object(f) if isinstance(f, str) else f

    def unregister_target(self, target_name: str, f: CommTargetCallback | None = None) -> t.Any:
        """Unregister the callable registered for ``target_name`` and return it."""
        return self.targets.pop(target_name)

    def register_comm(self, comm: t.Any) -> str:
        """Register a new comm and return its id."""
        with self._registry_lock:
            previous = self.comms.get(comm.comm_id)
            if previous is not None and previous is not comm:
                self._count_removed(previous)
            if previous is not comm:
                self._count_added(comm)
            self.comms[comm.comm_id] = comm
        if isinstance(comm, BaseComm):
            comm._manager = self
        return str(comm.comm_id)

    def unregister_comm(self, comm: t.Any) -> None:
        """Unregister a comm; raises KeyError if it is not registered."""
        with self._registry_lock:
            removed = self.comms.pop(comm.comm_id)
            self._count_removed(removed)

    def get_comm(self, comm_id: str) -> t.Any:
        """The comm with this id, or None (with a log line) when there is none; never raises."""
        comm = self.comms.get(comm_id) if isinstance(comm_id, str) else None
        if comm is None:
            self.log.warning("No such comm: %s", wire_repr(comm_id))
        return comm

    def create_comm(self, **kwargs: t.Any) -> t.Any:
        """Make the comm object for a frontend-opened comm (the ``comm`` package's hook)."""
        return comm_hooks.create_comm(**kwargs)

    # dispatch

    def comm_open(self, stream: t.Any, ident: t.Any, msg: MessageType) -> None:
        """Handle a frontend's ``comm_open``: run the target, or close the comm back."""
        try:
            request = check_comm_message(msg, "comm_open")
        except MalformedMessage as reason:
            self.log.warning("Ignored comm_open: %s", reason)
            self._close_back_if_unused(comm_id_of(msg), "comm")
            return
        comm_id, target_name = request.comm_id, t.cast(str, request.target_name)
        with self._registry_lock:
            existing = self.comms.get(comm_id)
            if existing is not None:
                self.log.error(
                    "Refused comm_open for %s (target %r): a comm with that id is already open "
                    "(target %r); the open comm is kept.",
                    comm_id,
                    target_name,
                    getattr(existing, "target_name", None),
                )
                return
            limit = self.max_frontend_comms
            if limit and self._frontend_comms >= limit:
                self.log.warning(
                    "Refused comm_open for %s (target %r): the frontend already has %d comms open, "
                    "the limit set by %s; closing it back.",
                    comm_id,
                    target_name,
                    self._frontend_comms,
                    self.setting_name("max_frontend_comms"),
                )
                refused = True
            else:
                refused = False
                comm = self.create_comm(comm_id=comm_id, primary=False, target_name=target_name)
                self.register_comm(comm)
        if refused:
            self._close_back_if_unused(comm_id, target_name)
            return
        if isinstance(comm, BaseComm):
            comm._record_in(msg)
        f = self.targets.get(target_name)
        if f is None:
            self.log.error(
                "No such comm target registered: %s; closing comm %s back to the frontend.",
                target_name,
                comm_id,
            )
            self._close_quietly(comm)
            return

        def what() -> str:
            return f"the comm target {target_name!r} (opening comm {comm_id})"

        if not run_callback(
            f, (comm, msg), self, what, on_failure=lambda: self._close_quietly(comm)
        ):
            self._close_quietly(comm)

    def comm_msg(self, stream: t.Any, ident: t.Any, msg: MessageType) -> None:
        """Handle a frontend's ``comm_msg``: pass it to its comm."""
        try:
            request = check_comm_message(msg, "comm_msg")
        except MalformedMessage as reason:
            self.log.warning("Ignored comm_msg: %s", reason)
            return
        comm = self.comms.get(request.comm_id)
        if comm is None:
            self.log.warning(
                "Ignored comm_msg for comm %s: no such comm is open (closed, or never opened).",
                request.comm_id,
            )
            return
        try:
            comm.handle_msg(msg)
        except Exception as exc:
            self.report_callback_error(f"handle_msg of comm {request.comm_id}", exc)

    def comm_close(self, stream: t.Any, ident: t.Any, msg: MessageType) -> None:
        """Handle a frontend's ``comm_close``: unregister the comm and run its close callback."""
        try:
            request = check_comm_message(msg, "comm_close")
        except MalformedMessage as reason:
            self.log.warning("Ignored comm_close: %s", reason)
            return
        with self._registry_lock:
            comm = self.comms.pop(request.comm_id, None)
            if comm is not None:
                self._count_removed(comm)
        if comm is None:
            self.log.warning(
                "Ignored comm_close for comm %s: no such comm is open (closed, or never opened).",
                request.comm_id,
            )
            return
        comm._closed = True
        try:
            comm.handle_close(msg)
        except Exception as exc:
            self.report_callback_error(f"handle_close of comm {request.comm_id}", exc)

    # how callbacks are run (CallbackHost)

    def report_callback_error(self, what: str, exc: BaseException) -> None:
        """Log an exception raised by a callback, with its traceback."""
        self.log.error("Exception in %s", what, exc_info=exc)

    def callback_loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop for coroutine callbacks run from a thread without one (none here)."""
        return None

    def callback_scope(self) -> t.ContextManager[None]:
        """What surrounds an ``on_msg`` callback: here the shell's pre/post_execute events."""
        return fire_cell_hooks()

    def setting_name(self, name: str) -> str:
        """How users refer to one of this manager's settings, for log lines."""
        return f"{type(self).__name__}.{name}"

    # internals

    def _count_added(self, comm: t.Any) -> None:
        if not getattr(comm, "primary", True):
            self._frontend_comms += 1

    def _count_removed(self, comm: t.Any) -> None:
        if not getattr(comm, "primary", True):
            self._frontend_comms -= 1
        if not self.comms:
            # A dict keeps the table it grew to; clear() gives back what 10,000 comms took.
            self.comms.clear()

    def _close_quietly(self, comm: t.Any) -> None:
        try:
            comm.close()
        except Exception as exc:
            self.log.error(
                "Could not close comm %s back to the frontend", comm.comm_id, exc_info=exc
            )

    def _close_back_if_unused(self, comm_id: str | None, target_name: str) -> None:
        """Tell the frontend that a comm it opened is closed, unless that id is in use here."""
        if comm_id is None or comm_id in self.comms:
            return
        comm = self.create_comm(comm_id=comm_id, primary=False, target_name=target_name)
        self._close_quietly(comm)


def _import_object(dotted: str) -> t.Any:
    """Import ``package.module.name`` (or a bare module name) from kernel-side code."""
    package, _, name = dotted.rpartition(".")
    if not package:
        return __import__(name)
    module = __import__(package, fromlist=[name])
    try:
        return getattr(module, name)
    except AttributeError as e:
        raise ImportError(f"No module named {name}") from e
