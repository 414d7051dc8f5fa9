"""BaseComm: one end of a Jupyter comm, with its life cycle and its traffic figures.

The class knows nothing of ipykernel: a subclass supplies ``publish_msg``. The
life cycle is that of the ``comm`` package's ``base_comm.py``: a primary comm
opens its peer when constructed, a secondary one is open at once, close is sent
once. On top of it: sending on a closed comm is dropped and logged once, a
callback may be a coroutine function, and each comm counts what it moves.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import typing as t
import uuid

import comm as comm_hooks

from .callbacks import fire_cell_hooks, run_callback
from .stats import CommStats, buffer_nbytes

if t.TYPE_CHECKING:
    from .manager import CommManager

logger = logging.getLogger("kernel_comm_ext")

MessageType = dict[str, t.Any]
MaybeDict = dict[str, t.Any] | None
BuffersType = t.Sequence[t.Any] | None
CommCallback = t.Callable[[MessageType], t.Any]

# One lock for the close-once check of every comm: a lock per comm would cost
# more memory than the rare contention on this one.
_close_lock = threading.Lock()


class BaseComm:
    """One end of a comm between the kernel and a frontend.

    Subclass it with a ``publish_msg`` that sends on the IOPub channel.
    """

    __slots__ = (
        "__dict__",
        "__weakref__",
        "_close_callback",
        "_close_data",
        "_closed",
        "_dropped_after_close",
        "_manager",
        "_msg_callback",
        "_open_data",
        "buffer_bytes_in",
        "buffer_bytes_out",
        "comm_id",
        "last_activity",
        "messages_in",
        "messages_out",
        "opened_at",
        "primary",
        "target_module",
        "target_name",
        "topic",
    )

    def __init__(
        self,
        target_name: str = "comm",
        data: MaybeDict = None,
        metadata: MaybeDict = None,
        buffers: BuffersType = None,
        comm_id: str | None = None,
        primary: bool = True,
        target_module: str | None = None,
        topic: bytes | None = None,
        _open_data: MaybeDict = None,
        _close_data: MaybeDict = None,
        **kwargs: t.Any,
    ) -> None:
        super().__init__(**kwargs)
        self.comm_id: str = comm_id if comm_id else uuid.uuid4().hex
        self.primary: bool = primary
        self.target_name: str = target_name
        self.target_module: str | None = target_module
        # Frontends may pick any text as an id, not only ASCII hex digits.
        self.topic: bytes = topic if topic else f"comm-{self.comm_id}".encode()
        self._open_data = _open_data
        self._close_data = _close_data
        self._msg_callback: CommCallback | None = None
        self._close_callback: CommCallback | None = None
        self._manager: CommManager | None = None
        self._dropped_after_close = 0
        self.messages_in = self.messages_out = 0
        self.buffer_bytes_in = self.buffer_bytes_out = 0
        self.opened_at = self.last_activity = time.time()
        self._closed = True
        if self.primary:
            # I am primary, open my peer.
            self.open(data=data, metadata=metadata, buffers=buffers)
        else:
            self._closed = False

    def publish_msg(
        self,
        msg_type: str,
        data: MaybeDict = None,
        metadata: MaybeDict = None,
        buffers: BuffersType = None,
        **keys: t.Any,
    ) -> None:
        """Send one comm message to the frontend; subclasses implement it."""
        raise NotImplementedError("publish_msg must be implemented by a subclass of BaseComm")

    def __del__(self) -> None:
        """Close on garbage collection, through ``_close_collected``."""
        # Interpreter teardown can break anything; a finalizer must not raise.
        # No other reference exists, so no other thread is closing this comm:
        # the close-once check needs no lock here.
        with contextlib.suppress(Exception):
            if not self._closed:
                self._close_collected()

    def _close_collected(self) -> None:
        """Close this comm, which the garbage collector found; runs in its finalizer.

        A finalizer can run inside any lock of any thread, so a subclass whose
        sending takes locks should only queue the close here and send it later
        (keeping the comm alive until then): ``KernelComm`` does. This default
        sends at once.
        """
        self.close(deleting=True)

    # publishing messages

    def open(
        self, data: MaybeDict = None, metadata: MaybeDict = None, buffers: BuffersType = None
    ) -> None:
        """Open the frontend-side version of this comm."""
        if data is None:
            data = self._open_data or {}
        manager = comm_hooks.get_comm_manager()
        if manager is None:
            raise RuntimeError("Comms cannot be opened without a comm_manager.")
        manager.register_comm(self)
        try:
            self.publish_msg(
                "comm_open",
                data=data,
                metadata=metadata,
                buffers=buffers,
                target_name=self.target_name,
                target_module=self.target_module,
            )
            self._closed = False
        except Exception:
            manager.unregister_comm(self)
            raise
        self._record_out(buffers)

    def close(
        self,
        data: MaybeDict = None,
        metadata: MaybeDict = None,
        buffers: BuffersType = None,
        deleting: bool = False,
    ) -> None:
        """Close the frontend-side version of this comm; only the first call sends."""
        with _close_lock:
            if self._closed:
                return
            self._closed = True
        if data is None:
            data = self._close_data or {}
        try:
            self.publish_msg("comm_close", data=data, metadata=metadata, buffers=buffers)
        except Exception:
            # Refused before sending (unsendable data or buffers): still open on both sides.
            self._closed = False
            raise
        self._record_out(buffers)
        if not deleting:
            # If deleting, the comm can't be registered
            self._unregister()

    def send(
        self, data: MaybeDict = None, metadata: MaybeDict = None, buffers: BuffersType = None
    ) -> None:
        """Send a message to the frontend-side version of this comm.

        On a closed comm the message is dropped (the frontend may have closed it
        first); the first drop is logged.
        """
        if self._closed:
            self._drop_after_close()
            return
        self.publish_msg("comm_msg", data=data, metadata=metadata, buffers=buffers)
        self._record_out(buffers)

    # registering callbacks

    def on_close(self, callback: CommCallback | None) -> None:
        """Register a callback (function or coroutine function) for comm_close; None removes it.

        It is called with the whole ``comm_close`` message.
        """
        self._close_callback = callback

    def on_msg(self, callback: CommCallback | None) -> None:
        """Register a callback (function or coroutine function) for comm_msg; None removes it.

        It is called with the whole ``comm_msg`` message.
        """
        self._msg_callback = callback

    # handling of incoming messages

    def handle_close(self, msg: MessageType) -> None:
        """Handle a comm_close message from the frontend."""
        logger.debug("handle_close[%s]", self.comm_id)
        self._record_in(msg)
        if self._close_callback:
            run_callback(
                self._close_callback, (msg,), self._manager, self._callback_label("on_close")
            )

    def handle_msg(self, msg: MessageType) -> None:
        """Handle a comm_msg message, inside the manager's callback scope.

        The protocol layer's scope fires the shell's pre/post_execute events
        around the callback, as the comm package does; the kernel binding fires
        them only when no cell is running (README: "Callbacks and the running cell").
        """
        logger.debug("handle_msg[%s]", self.comm_id)
        self._record_in(msg)
        if self._msg_callback:
            manager = self._manager
            scope = manager.callback_scope() if manager is not None else fire_cell_hooks()
            with scope:
                run_callback(self._msg_callback, (msg,), manager, self._callback_label("on_msg"))

    # figures

    @property
    def closed(self) -> bool:
        """Whether this comm is closed (by either side)."""
        return self._closed

    def stats(self) -> CommStats:
        """A snapshot of this comm's traffic figures."""
        return CommStats(
            comm_id=self.comm_id,
            target_name=self.target_name,
            opened_by="kernel" if self.primary else "frontend",
            opened_at=self.opened_at,
            last_activity=self.last_activity,
            messages_in=self.messages_in,
            messages_out=self.messages_out,
            buffer_bytes_in=self.buffer_bytes_in,
            buffer_bytes_out=self.buffer_bytes_out,
            dropped_after_close=self._dropped_after_close,
        )

    # internals

    def _record_out(self, buffers: BuffersType) -> None:
        self.messages_out += 1
        if buffers:
            self.buffer_bytes_out += buffer_nbytes(buffers)
        self.last_activity = time.time()

    def _record_in(self, msg: MessageType) -> None:
        self.messages_in += 1
        buffers = msg.get("buffers") if isinstance(msg, dict) else None
        if buffers:
            self.buffer_bytes_in += buffer_nbytes(buffers)
        self.last_activity = time.time()

    def _drop_after_close(self) -> None:
        self._dropped_after_close += 1
        if self._dropped_after_close == 1:
            self._log().warning(
                "Comm %s (target %r) is closed; dropping the message sent on it "
                "(further drops on this comm are not logged).",
                self.comm_id,
                self.target_name,
            )

    def _log(self) -> t.Any:
        """The kernel's log when a manager of ours holds this comm, else the module's."""
        return self._manager.log if self._manager is not None else logger

    def _unregister(self) -> None:
        manager = self._manager or comm_hooks.get_comm_manager()
        # The frontend may have closed it first; then there is nothing to unregister.
        if manager is not None and manager.comms.get(self.comm_id) is self:
            manager.unregister_comm(self)

    def _callback_label(self, callback_kind: str) -> t.Callable[[], str]:
        return lambda: f"the {callback_kind} callback of comm {self.comm_id} ({self.target_name})"
