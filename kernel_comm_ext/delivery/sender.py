"""CommSender: puts the comm messages of one kernel on its IOPub socket, within a rate budget.

``session.send`` on ipykernel's IOPub socket only queues the frames for the
IOPub thread, so it is safe from any thread and keeps each thread's order.

Flow control. Jupyter Server drops IOPub messages past its rate
limit, so a loop that sets a widget's value 20,000 times can leave the page on
a stale value. With a rate budget (``rate_budget.py``), a message under budget
goes out at once; an ipywidgets ``update`` over budget is held, and later
updates of the same comm merge into it (``widget_updates.py``), so the newest
state always goes out and fewer messages are sent. A held update goes out

- before any other message of its comm (per-comm order is never broken),
- when the cell (or comm callback) ends (the shell's ``post_execute`` event),
- when the budget allows, sent by a flusher thread that needs nothing of the
  kernel's event loop, so a synchronous cell that keeps the loop busy still
  updates the page.

Every other message is sent as it comes: never merged, never dropped. With
pacing on it waits (blocking its thread, not reordering) until the budget
allows it; otherwise it goes out at once and runs the budget into debt.

The fast path (budget left, nothing held, no pacing) takes no lock.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import threading
import time
import typing as t

from ..iopub.wire import IOPubBatch, MessageWriter
from .rate_budget import RateBudget
from .widget_updates import WidgetUpdate

if t.TYPE_CHECKING:
    from ..iopub.backlog import Backlog
    from ..protocol.comm import BaseComm

logger = logging.getLogger("kernel_comm_ext")

# Never spin on a budget that is about to allow the next message.
_MIN_WAIT = 0.0005


@dataclasses.dataclass(frozen=True)
class DeliveryStats:
    """What a CommSender did so far."""

    #: Messages put on the IOPub socket.
    sent: int
    #: Widget updates merged into a held one (messages saved).
    coalesced: int
    #: Widget updates held back because the budget was spent.
    held: int
    #: Held updates not sent yet.
    pending: int
    #: Times a paced message waited for the budget, and the seconds it took.
    paced_waits: int
    paced_seconds: float
    #: Held updates that failed to send (logged with their traceback).
    errors: int
    #: The settings in force.
    rate_budget: float
    coalesce_updates: bool
    pace_messages: bool

    def describe(self) -> str | None:
        """A few lines for the ``%comm`` report; None until the budget held anything back."""
        if not (self.held or self.paced_waits or self.errors):
            return None
        budget = f"{self.rate_budget:g} msg/s" if self.rate_budget else "off"
        lines = [
            f"rate budget: {budget} (coalesce widget updates: {_on(self.coalesce_updates)},"
            f" pace other messages: {_on(self.pace_messages)})",
            f"sent: {self.sent}, widget updates coalesced (saved): {self.coalesced},"
            f" held now: {self.pending}",
            f"paced: {self.paced_waits} waits, {self.paced_seconds:.2f} s",
        ]
        if self.errors:
            lines.append(f"held updates that failed to send (see the log): {self.errors}")
        return "\n".join(lines)


def _on(flag: bool) -> str:
    return "on" if flag else "off"


class CommSender:
    """Sends comm messages through a kernel's session on its IOPub socket.

    ``rate_budget`` is in messages per second (0: no budget, everything is
    sent at once); ``coalesce_updates`` merges held widget updates;
    ``pace_messages`` makes other messages wait for the budget.
    """

    def __init__(
        self,
        kernel: t.Any,
        rate_budget: float = 0.0,
        coalesce_updates: bool = True,
        pace_messages: bool = False,
    ) -> None:
        self.session = kernel.session
        self.iopub_socket = IOPubBatch.wrap(kernel.iopub_socket)
        self._writer = MessageWriter(kernel.session)
        # Reentrant: a comm collected while the lock is held closes itself
        # through ``send`` on the same thread.
        self._cond = threading.Condition(threading.RLock())
        self._local = threading.local()  # .depth: nesting of the lock on this thread
        # A comm the garbage collector closes on the IOPub thread must not make
        # that thread wait for the budget: all IOPub output would wait with it.
        self._iopub_thread = getattr(getattr(kernel, "iopub_thread", None), "thread", None)
        # Held updates by comm id, oldest first: (comm, update).
        self._pending: dict[str, tuple[BaseComm, WidgetUpdate]] = {}
        self._budget: RateBudget | None = None
        self._coalesce = coalesce_updates
        self._pace = pace_messages
        self._flusher: threading.Thread | None = None
        self._flusher_lock = threading.Lock()
        self._closed = False
        self._sent = self._coalesced = self._held = self._paced_waits = self._errors = 0
        self._paced_seconds = 0.0
        self.configure(rate_budget, coalesce_updates, pace_messages)
        self._events = getattr(getattr(kernel, "shell", None), "events", None)
        if self._events is not None:
            self._events.register("post_execute", self.flush)

    # sending

    def send(
        self,
        comm: BaseComm,
        msg_type: str,
        content: dict[str, t.Any],
        metadata: dict[str, t.Any],
        parent: dict[str, t.Any],
        buffers: list[memoryview] | None,
    ) -> None:
        """Send one message of ``comm``, within the budget (see the module's docstring)."""
        budget = self._budget
        # Jupyter Server does not count comm_open; neither does the budget.
        if budget is not None and msg_type != "comm_open":
            if self._pending or self._pace:
                self._send_controlled(comm, msg_type, content, metadata, parent, buffers)
                return
            if not budget.take():
                if self._coalesce and _looks_like_update(content):
                    self._send_controlled(comm, msg_type, content, metadata, parent, buffers)
                    return
                budget.owe()
        self._sent += 1
        self._writer.send(
            self.iopub_socket,
            msg_type,
            content,
            parent=parent,
            ident=comm.topic,
            metadata=metadata,
            buffers=buffers,
        )

    def _send_controlled(
        self,
        comm: BaseComm,
        msg_type: str,
        content: dict[str, t.Any],
        metadata: dict[str, t.Any],
        parent: dict[str, t.Any],
        buffers: list[memoryview] | None,
    ) -> None:
        # As ``_locked``, inlined: this runs for every update over budget.
        local = self._local
        depth = getattr(local, "depth", 0)
        with self._cond:
            local.depth = depth + 1
            try:
                budget = self._budget
                if self._coalesce and budget is not None:
                    update = WidgetUpdate.parse(msg_type, content, metadata, parent, buffers)
                    if update is not None:
                        self._hold(comm, update, budget)
                        return
                self._send_after_held(comm, may_wait=self._may_wait(depth))
                self._emit(comm, msg_type, content, metadata, parent, buffers)
            finally:
                local.depth = depth

    @contextlib.contextmanager
    def _locked(self) -> t.Iterator[bool]:
        """Hold the lock; yield whether this thread may wait for the budget.

        Nested (a comm the garbage collector closes while this thread holds
        the lock sends its comm_close), it must not: waiting releases the lock
        in the middle of the outer operation. Nor may the IOPub thread.
        """
        local = self._local
        depth = getattr(local, "depth", 0)
        with self._cond:
            local.depth = depth + 1
            try:
                yield self._may_wait(depth)
            finally:
                local.depth = depth

    def _may_wait(self, depth: int) -> bool:
        """Whether a send at this lock depth, on this thread, may wait for the budget."""
        return depth == 0 and threading.current_thread() is not self._iopub_thread

    def _hold(self, comm: BaseComm, update: WidgetUpdate, budget: RateBudget) -> None:
        """Merge ``update`` into the comm's held one, or hold it; send what the budget allows."""
        pending = self._pending
        held = pending.get(comm.comm_id)
        if held is not None:
            held[1].merge(update)
            self._coalesced += 1
            if pending.get(comm.comm_id) is not held:
                # A nested send emitted it meanwhile: hold the merged state again.
                pending[comm.comm_id] = held
        elif not pending and budget.take():
            content, buffers = update.message()
            self._emit(comm, "comm_msg", content, update.metadata, update.parent, buffers)
            return
        else:
            pending[comm.comm_id] = (comm, update)
            self._held += 1
            self._wake_flusher()
        self._drain()

    def _send_after_held(self, comm: BaseComm, may_wait: bool) -> None:
        """Spend the budget for one message of ``comm``, sending its held update first.

        Paced, this waits for the budget and gives held updates (oldest first)
        their turn; otherwise the budget goes into debt. Called under the lock;
        waiting releases it, so the loop looks again at what is held.
        """
        pending = self._pending
        while True:
            budget = self._budget
            if budget is None:
                return
            if self._pace and may_wait:
                if not budget.take():
                    self._wait_for_budget(budget)
                    continue
            else:
                budget.owe()
            comm_id = comm.comm_id if comm.comm_id in pending else None
            if comm_id is None and self._pace and may_wait and pending:
                comm_id = next(iter(pending))
            if comm_id is None:
                return
            self._emit_held(*pending.pop(comm_id))

    # held updates

    def _drain(self) -> None:
        """Send held updates, oldest first, while the budget allows (under the lock)."""
        pending = self._pending
        budget = self._budget
        while pending and (budget is None or budget.take()):
            self._emit_held(*pending.pop(next(iter(pending))))

    def _wait_for_budget(self, budget: RateBudget) -> None:
        start = time.monotonic()
        self._cond.wait(max(budget.wait_time(), _MIN_WAIT))
        self._paced_waits += 1
        self._paced_seconds += time.monotonic() - start

    def _wake_flusher(self) -> None:
        self._cond.notify_all()

    def _start_flusher(self) -> None:
        """Start the flusher thread once a budget is set; never under the sender's lock.

        ``Thread.start`` waits for the new thread, whose start-up can run the
        garbage collector, whose comm finalizers send: under the lock, that
        deadlocks.
        """
        with self._flusher_lock:
            if self._flusher is not None or self._closed or self._budget is None:
                return
            self._flusher = threading.Thread(
                target=self._run_flusher, name="kernel-comm-ext-flusher", daemon=True
            )
            self._flusher.start()

    def _run_flusher(self) -> None:
        """Send held updates whenever the budget allows, until closed."""
        with self._locked():
            while not self._closed:
                budget = self._budget
                if not self._pending:
                    self._cond.wait()
                elif budget is not None and budget.wait_time() > 0:
                    self._cond.wait(max(budget.wait_time(), _MIN_WAIT))
                else:
                    self._drain()

    def flush(self) -> None:
        """Send every held update now, waiting for the budget if it is spent.

        Runs when a cell or comm callback ends (``post_execute``), so the page
        has the cell's last widget state before the cell's idle status.
        """
        if not self._pending:
            return
        with self._locked() as may_wait:
            self._drain()
            while self._pending and may_wait:
                budget = self._budget
                if budget is not None:
                    self._wait_for_budget(budget)
                self._drain()

    # the wire

    def _emit(
        self,
        comm: BaseComm,
        msg_type: str,
        content: dict[str, t.Any],
        metadata: dict[str, t.Any],
        parent: dict[str, t.Any],
        buffers: list[memoryview] | None,
    ) -> None:
        self._sent += 1
        self._writer.send(
            self.iopub_socket,
            msg_type,
            content,
            parent=parent,
            ident=comm.topic,
            metadata=metadata,
            buffers=buffers,
        )

    def _emit_held(self, comm: BaseComm, update: WidgetUpdate) -> None:
        # Whoever sends a held update (the flusher, another comm's sender) must
        # not get its error: it is logged with its traceback.
        content, buffers = update.message()
        try:
            self._emit(comm, "comm_msg", content, update.metadata, update.parent, buffers)
        except Exception:
            self._errors += 1
            logger.exception("Could not send the held widget update of comm %s", comm.comm_id)

    # settings and life cycle

    def configure(self, rate_budget: float, coalesce_updates: bool, pace_messages: bool) -> None:
        """Apply new settings; what is held and may no longer be held is sent at once."""
        if rate_budget < 0:
            raise ValueError(f"rate_budget must be >= 0 messages per second, not {rate_budget!r}")
        with self._locked():
            self._coalesce = coalesce_updates
            self._pace = pace_messages
            if rate_budget == 0 or self._closed:
                self._budget = None
            elif self._budget is None or self._budget.rate != rate_budget:
                self._budget = RateBudget(rate_budget)
            if self._budget is None or not coalesce_updates:
                self._send_all_held()
            self._cond.notify_all()
        self._start_flusher()

    def _send_all_held(self) -> None:
        pending = self._pending
        while pending:
            self._emit_held(*pending.pop(next(iter(pending))))

    def close(self) -> None:
        """Send what is held, stop the flusher; later messages are sent directly."""
        self.flush()
        with self._locked():
            self._closed = True
            self._budget = None
            self._send_all_held()
            self._cond.notify_all()
            flusher = self._flusher
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join(timeout=5)
        if self._events is not None:
            try:
                self._events.unregister("post_execute", self.flush)
            except ValueError:
                logger.debug("post_execute flush was not registered")

    def count_queued_in(self, backlog: Backlog | None) -> None:
        """Count the messages queued for the IOPub thread in lossless IOPub's ``backlog``.

        Its cap then holds a cell back before it queues more than one batch past
        it; None stops counting (lossless IOPub is off).
        """
        if isinstance(self.iopub_socket, IOPubBatch):
            self.iopub_socket.backlog = backlog

    def hand_off_through(self, queue: collections.deque[t.Any] | None) -> None:
        """Batch comm messages in ``queue``, where the IOPub thread's scheduler keeps its work.

        None: in ipykernel's own queue (the scheduler is gone).
        """
        if isinstance(self.iopub_socket, IOPubBatch):
            self.iopub_socket.hand_off_through(queue)

    def stats(self) -> DeliveryStats:
        """What this sender did so far (counts from several threads are approximate)."""
        budget = self._budget
        return DeliveryStats(
            sent=self._sent,
            coalesced=self._coalesced,
            held=self._held,
            pending=len(self._pending),
            paced_waits=self._paced_waits,
            paced_seconds=self._paced_seconds,
            errors=self._errors,
            rate_budget=budget.rate if budget is not None else 0.0,
            coalesce_updates=self._coalesce,
            pace_messages=self._pace,
        )


def _looks_like_update(content: dict[str, t.Any]) -> bool:
    """Whether this may be a widget update: a cheap first look (``WidgetUpdate.parse`` decides)."""
    data = content.get("data")
    return type(data) is dict and data.get("method") == "update"
