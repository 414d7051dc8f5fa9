"""KernelComm: the comm class whose messages go out on the kernel's IOPub socket."""

from __future__ import annotations

import typing as t

import comm as comm_hooks

from ..protocol.comm import BaseComm, BuffersType, MaybeDict
from .buffers import as_buffer_views

if t.TYPE_CHECKING:
    from ..delivery.sender import CommFlow, CommSender


# No subshell has sent on the comm yet: the frontend's messages go where they are addressed.
_UNSET = object()


def request_id_of(data: object) -> str | None:
    """The id of a request-style payload (``{"content": {"id": ...}}``), as ipykernel reads it."""
    if isinstance(data, dict):
        content = data.get("content")
        if isinstance(content, dict):
            request_id = content.get("id")
            if isinstance(request_id, str):
                return request_id
    return None


class KernelComm(BaseComm):
    """A comm of a running ipykernel.

    ``publish_msg`` sends through the kernel's session on its IOPub socket, with
    topic ``comm-<comm_id>`` and the parent header of the request being
    handled, so output and replies route to the right cell and subshell. It
    remembers which subshell sent last, so ipykernel 7 routes the frontend's
    replies back there (``_reply_subshell_for``).
    """

    __slots__ = ("_reply_subshell_id", "_reply_subshell_ids", "_sender", "delivery", "kernel")

    def __init__(
        self,
        *args: t.Any,
        kernel: t.Any = None,
        sender: CommSender | None = None,
        **kwargs: t.Any,
    ) -> None:
        if kernel is None or sender is None:
            kernel, sender = _current_binding(kernel, sender)
        self.kernel = kernel
        self._sender = sender
        self._reply_subshell_id: object = _UNSET
        self._reply_subshell_ids: dict[str, str | None] | None = None
        #: What flow control knows and counts of this comm (set by the sender).
        self.delivery: CommFlow | None = None
        super().__init__(*args, **kwargs)

    def publish_msg(
        self,
        msg_type: str,
        data: MaybeDict = None,
        metadata: MaybeDict = None,
        buffers: BuffersType = None,
        **keys: t.Any,
    ) -> None:
        """Send one comm message on the kernel's IOPub socket."""
        views = as_buffer_views(buffers) if buffers else None
        kernel = self.kernel
        if kernel is None or kernel.session is None or self._sender is None:
            return
        content = {"data": {} if data is None else data, "comm_id": self.comm_id, **keys}
        parent = kernel.get_parent()
        header = parent.get("header") if parent else None
        if header:
            self._note_reply_route(header.get("subshell_id"), data)
        self._sender.send(self, msg_type, content, metadata or {}, parent, views)

    def _close_collected(self) -> None:
        """Hand the close to the sender, which sends it later (see ``BaseComm.__del__``)."""
        sender = self._sender
        if sender is None or not sender.close_later(self):
            super()._close_collected()

    def _note_reply_route(self, subshell_id: str | None, data: MaybeDict) -> None:
        # A comm can be used from another subshell than the one that created
        # it; ipykernel 7 routes the frontend's reply to the last sender.
        self._reply_subshell_id = subshell_id
        request_id = request_id_of(data)
        if request_id is not None:
            if self._reply_subshell_ids is None:
                self._reply_subshell_ids = {}
            self._reply_subshell_ids[request_id] = subshell_id

    def _reply_subshell_for(self, data: object, default: str | None) -> str | None:
        """The subshell that should handle the frontend's message carrying ``data``."""
        request_id = request_id_of(data)
        routes = self._reply_subshell_ids
        if request_id is not None and routes:
            routed = routes.pop(request_id, _UNSET)
            if routed is not _UNSET:
                return t.cast("str | None", routed)
        if self._reply_subshell_id is _UNSET:
            return default
        return t.cast("str | None", self._reply_subshell_id)


def _current_binding(kernel: t.Any, sender: CommSender | None) -> tuple[t.Any, CommSender | None]:
    """The kernel and sender of the installed manager, for a KernelComm made by hand."""
    manager = comm_hooks.get_comm_manager()
    kernel = kernel if kernel is not None else getattr(manager, "kernel", None)
    sender = sender if sender is not None else getattr(manager, "sender", None)
    return kernel, sender
