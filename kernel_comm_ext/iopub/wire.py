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
  else published on IOPub (stream output, status, display data), and only up
  to ``MAX_BATCH_MESSAGES`` messages or ``MAX_BATCH_BYTES`` of buffers: each
  new batch goes through the IOPub thread's ``schedule``, where lossless
  IOPub holds a sender back while the backlog is at its cap. Messages that
  join a queued batch count in that backlog until the IOPub thread takes
  them, so no sender overshoots the cap by more than one batch.
"""

from __future__ import annotations

import collections
import os
import threading
import typing as t

from jupyter_client.session import DELIM, extract_header

from .ipykernel_internals import iopub_thread_of_socket, ipykernel_queue, really_send

if t.TYPE_CHECKING:
    from .backlog import Backlog

Frames = list[t.Any]

#: The most messages, and bytes of buffers, one hand-off to the IOPub thread takes.
MAX_BATCH_MESSAGES = 64
MAX_BATCH_BYTES = 1 << 20


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
        # As Session.send: big frames go without a copy.
        copy = max(len(f) for f in frames) < session.copy_threshold
        if not buffers:
            stream.send_multipart(frames, copy=copy)
            return
        frames.extend(buffers)
        copy = copy and max(len(b) for b in buffers) < session.copy_threshold
        if isinstance(stream, IOPubBatch):
            nbytes = sum(memoryview(b).nbytes for b in buffers)
            stream.send_multipart(frames, copy=copy, nbytes=nbytes)
        else:
            stream.send_multipart(frames, copy=copy)


class _Batch:
    """Messages for the IOPub thread to send in one go; calling it sends them."""

    __slots__ = ("backlog", "counted", "counted_bytes", "items", "nbytes", "owner")

    def __init__(self, owner: IOPubBatch, item: tuple[Frames, bool], nbytes: int) -> None:
        self.owner = owner
        self.items = [item]
        self.nbytes = nbytes
        # Where the messages that joined are counted while queued (the first one
        # is not: its sender is still on its way to ``schedule``).
        self.backlog = owner.backlog
        self.counted = self.counted_bytes = 0

    def __call__(self) -> None:
        owner = self.owner
        with owner._lock:
            if owner._batch is self:
                owner._batch = None
        # Nothing joins from here on.
        send = really_send(owner._iopub_thread)
        try:
            for frames, copy in self.items:
                send(frames, copy=copy)
        finally:
            # After the sends: what the socket keeps is counted there first, so
            # the backlog never looks emptier than it is.
            if self.backlog is not None and self.counted:
                self.backlog.count_taken(self.counted, self.counted_bytes)


class IOPubBatch:
    """A stand-in for ipykernel's IOPub socket that wakes the IOPub thread once per batch.

    ipykernel's ``BackgroundSocket.send_multipart`` queues a callback on the
    IOPub thread and wakes it through a ZMQ pipe, for every message. Here a
    message joins the batch already queued when that batch is still the last
    queued callback (nothing else was published since), else starts a new batch.
    """

    def __init__(self, iopub_socket: t.Any, iopub_thread: t.Any) -> None:
        self.iopub_socket = iopub_socket
        self._iopub_thread = iopub_thread
        # Where the IOPub thread's work waits (ipykernel's queue, or the scheduler's).
        self._hand_off_queue: collections.deque[t.Any] = ipykernel_queue(iopub_thread)
        # Nothing that can start the garbage collector (which may close a comm, and so
        # send, from BaseComm.__del__) runs while this is held: no object is created.
        self._lock = threading.RLock()
        self._batch: _Batch | None = None
        #: Lossless IOPub's backlog, set while it is on: queued messages count in it.
        self.backlog: Backlog | None = None

    @classmethod
    def wrap(cls, iopub_socket: t.Any) -> t.Any:
        """``IOPubBatch`` over ``iopub_socket`` if it is ipykernel's threaded one, else itself."""
        iopub_thread = iopub_thread_of_socket(iopub_socket)
        if iopub_thread is None:
            return iopub_socket
        return cls(iopub_socket, iopub_thread)

    def hand_off_through(self, queue: collections.deque[t.Any] | None) -> None:
        """Join batches while they are last in ``queue`` (None: ipykernel's own queue).

        Batches go to the IOPub thread through ``schedule``; a scheduler standing
        in for it (``scheduler.py``) keeps them in a queue of its own.
        """
        self._hand_off_queue = ipykernel_queue(self._iopub_thread) if queue is None else queue

    def send_multipart(self, frames: Frames, copy: bool = True, nbytes: int = 0) -> None:
        """Queue one message (with ``nbytes`` of buffers) for the IOPub thread."""
        if not self._iopub_thread.thread.is_alive():
            self.iopub_socket.send_multipart(frames, copy=copy)
            return
        item = (frames, copy)
        if self._join(item, nbytes):
            return
        batch = _Batch(self, item, nbytes)
        if self._join(item, nbytes, batch):
            return
        # Outside the lock: scheduling on a stopped thread runs the batch here.
        self._iopub_thread.schedule(batch)

    def _join(self, item: tuple[Frames, bool], nbytes: int, new: _Batch | None = None) -> bool:
        """Add ``item`` to the last queued batch if it has room, else make ``new`` current."""
        with self._lock:
            batch, queue = self._batch, self._hand_off_queue
            try:
                last = queue[-1]
            except IndexError:  # the IOPub thread took everything meanwhile
                last = None
            if (
                batch is not None
                and last is batch
                and len(batch.items) < MAX_BATCH_MESSAGES
                and batch.nbytes < MAX_BATCH_BYTES
            ):
                batch.items.append(item)
                batch.nbytes += nbytes
                if batch.backlog is not None:
                    batch.counted += 1
                    batch.counted_bytes += nbytes
                    batch.backlog.count_queued(1, nbytes)
                return True
            if new is not None:
                self._batch = new
            return False
