"""A raw IOPub reader for tests: a zmq SUB socket on a kernel's IOPub port.

Unlike ``Frontend``'s background reader, it reads only when the test calls it,
so a test can be a slow frontend, a stalled one (it stops calling) or one that
goes away (``close``).
"""

from __future__ import annotations

import time
import typing as t

import zmq
from jupyter_client.session import Session

from kernel_comm_ext.testing.client_common import is_idle_of

from .frontend import Frontend

__all__ = ["RawIOPubReader", "is_idle_of"]


class RawIOPubReader:
    """A frontend's IOPub connection to one kernel, read by hand."""

    def __init__(self, frontend: Frontend) -> None:
        info = frontend.km.get_connection_info()
        # Its own session: the Frontend's has seen these messages (replay check).
        self.session = Session(
            key=frontend.session.key, signature_scheme=frontend.session.signature_scheme
        )
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.SUB)
        self.socket.linger = 0
        self.socket.setsockopt(zmq.SUBSCRIBE, b"")
        try:
            self.socket.connect(f"{info['transport']}://{info['ip']}:{info['iopub_port']}")
            self._subscribe(frontend)
        except BaseException:
            self.close()
            raise

    def _subscribe(self, frontend: Frontend, timeout: float = 30.0) -> None:
        """Wait until the kernel sends to this socket (zmq subscriptions are asynchronous)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frontend.kernel_info()
            if self.socket.poll(200):
                self.drain()
                return
        raise AssertionError("the raw IOPub reader never received anything")

    def recv(self, timeout: float = 1.0) -> dict[str, t.Any] | None:
        """The next IOPub message, deserialized; None if nothing came within ``timeout`` s."""
        if not self.socket.poll(int(timeout * 1000)):
            return None
        frames = self.socket.recv_multipart(copy=True)
        _, msg_frames = self.session.feed_identities(frames, copy=True)
        return self.session.deserialize(msg_frames, content=True)

    def drain(self, quiet: float = 0.2) -> list[dict[str, t.Any]]:
        """Read until nothing came for ``quiet`` seconds."""
        msgs = []
        while (msg := self.recv(quiet)) is not None:
            msgs.append(msg)
        return msgs

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()
