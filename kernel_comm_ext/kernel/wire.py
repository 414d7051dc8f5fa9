"""The fast path of comm messages onto ipykernel's IOPub socket.

Two costs dominate a comm message in ipykernel (see benchmarks/README.md):
``Session.send`` packs four JSON parts and signs them, and ipykernel's IOPub
socket wakes its IOPub thread once per message. Here:

- ``MessageWriter`` builds exactly the frames ``Session.serialize`` builds, with
  the session's own ``pack`` and ``sign``, but packs the parent header once per
  request rather than once per message (a loop of sends in one cell shares it);
  anything unusual (a protocol adapter, debug output, a forked process) goes
  through ``Session.send`` itself.
- ``IOPubBatch`` stands in for the kernel's IOPub socket and hands messages to
  the IOPub thread in batches: consecutive comm messages join the batch still
  waiting in the thread's queue, one wake-up for all. A batch only grows while
  it is the last thing queued, so messages keep their order with everything
  else published on IOPub (stream output, status, display data).
"""

from __future__ import annotations

import os
import threading
import typing as t

from jupyter_client.session import DELIM, extract_header

Frames = list[t.Any]


class MessageWriter:
    """Sends comm messages as ``session.send`` would, reusing the packed parent header."""

    def __init__(self, session: t.Any) -> None:
        self.session = session
        # (parent header, its packed bytes), replaced whole: threads read it in one go.
        self._parent: tuple[object, bytes] = (None, b"")

    def send(
        self,
        stream: t.Any,
        msg_type: str,
        content: dict[str, t.Any],
        parent: dict[str, t.Any] | None = None,
        ident: bytes | None = None,
        metadata: dict[str, t.Any] | None = None,
        buffers: t.Sequence[t.Any] | None = None,
    ) -> None:
        """Serialize, sign and send one message on ``stream``."""
        session = self.session
        forked = session.check_pid and os.getpid() != session.pid
        if session.adapt_version or session.debug or forked:
            session.send(
                stream,
                msg_type,
                content,
                parent=parent,
                ident=ident,
                metadata=metadata,
                buffers=buffers,
            )
            return
        pack = session.pack
        parent_header = extract_header(parent) if parent else {}
        cached_header, packed_parent = self._parent
        if parent_header is not cached_header:
            packed_parent = pack(parent_header)
            # Holding the header keeps its identity from being reused by another dict.
            self._parent = (parent_header, packed_parent)
        defaults = session.metadata
        if defaults:
            metadata = {**defaults, **(metadata or {})}
        elif metadata is None:
            metadata = {}
        parts = [pack(session.msg_header(msg_type)), packed_parent, pack(metadata), pack(content)]
        frames: Frames = [DELIM, session.sign(parts), *parts]
        if ident is not None:
            frames.insert(0, ident)
        if buffers:
            frames.extend(buffers)
        # As Session.send: big frames go without a copy.
        copy = max(len(f) for f in frames) < session.copy_threshold
        stream.send_multipart(frames, copy=copy)


class _Batch:
    """Messages for the IOPub thread to send in one go; calling it sends them."""

    __slots__ = ("items", "owner")

    def __init__(self, owner: IOPubBatch, item: tuple[Frames, bool]) -> None:
        self.owner = owner
        self.items = [item]

    def __call__(self) -> None:
        owner = self.owner
        with owner._lock:
            if owner._batch is self:
                owner._batch = None
        really_send = owner._io_thread._really_send
        for frames, copy in self.items:
            really_send(frames, copy=copy)


class IOPubBatch:
    """A stand-in for ipykernel's IOPub socket that wakes the IOPub thread once per batch.

    ipykernel's ``BackgroundSocket.send_multipart`` queues a callback on the
    IOPub thread and wakes it through a ZMQ pipe, for every message. Here a
    message joins the batch already queued when that batch is still the last
    queued callback (nothing else was published since), else starts a new batch.
    """

    def __init__(self, iopub_socket: t.Any, io_thread: t.Any) -> None:
        self.iopub_socket = iopub_socket
        self._io_thread = io_thread
        self._events = io_thread._events
        # Nothing that can start the garbage collector (which may close a comm, and so
        # send, from BaseComm.__del__) runs while this is held: no object is created.
        self._lock = threading.RLock()
        self._batch: _Batch | None = None

    @classmethod
    def wrap(cls, iopub_socket: t.Any) -> t.Any:
        """``IOPubBatch`` over ``iopub_socket`` if it is ipykernel's threaded one, else itself."""
        io_thread = getattr(iopub_socket, "io_thread", None)
        if all(
            hasattr(io_thread, name) for name in ("_events", "_really_send", "schedule", "thread")
        ):
            return cls(iopub_socket, io_thread)
        return iopub_socket

    def send_multipart(self, frames: Frames, copy: bool = True) -> None:
        """Queue one message for the IOPub thread."""
        if not self._io_thread.thread.is_alive():
            self.iopub_socket.send_multipart(frames, copy=copy)
            return
        item = (frames, copy)
        if self._join(item):
            return
        batch = _Batch(self, item)
        if self._join(item, batch):
            return
        # Outside the lock: scheduling on a stopped thread runs the batch here.
        self._io_thread.schedule(batch)

    def _join(self, item: tuple[Frames, bool], new: _Batch | None = None) -> bool:
        """Add ``item`` to the last queued batch if there is one, else make ``new`` current."""
        with self._lock:
            batch, events = self._batch, self._events
            try:
                last = events[-1]
            except IndexError:  # the IOPub thread took everything meanwhile
                last = None
            if batch is not None and last is batch:
                batch.items.append(item)
                return True
            if new is not None:
                self._batch = new
            return False
