"""CommSender: puts the comm messages of one kernel on its IOPub socket."""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from ..protocol.comm import BaseComm


class CommSender:
    """Sends comm messages through a kernel's session on its IOPub socket.

    ``session.send`` on ipykernel's IOPub socket only queues the frames for the
    IOPub thread, so it is safe from any thread and keeps each thread's order.
    """

    def __init__(self, kernel: t.Any) -> None:
        self.session = kernel.session
        self.iopub_socket = kernel.iopub_socket

    def send(
        self,
        comm: BaseComm,
        msg_type: str,
        content: dict[str, t.Any],
        metadata: dict[str, t.Any],
        parent: dict[str, t.Any],
        buffers: list[memoryview] | None,
    ) -> None:
        """Send one message of ``comm`` now."""
        self.session.send(
            self.iopub_socket,
            msg_type,
            content,
            parent=parent,
            ident=comm.topic,
            metadata=metadata,
            buffers=buffers,
        )

    def flush(self) -> None:
        """Send whatever is held back (nothing, for this sender)."""

    def close(self) -> None:
        """Stop; later messages are sent directly."""
