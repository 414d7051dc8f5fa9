"""CommSender: puts the comm messages of one kernel on its IOPub socket, within a rate budget.

``session.send`` on ipykernel's IOPub socket only queues the frames for the
IOPub thread, so it is safe from any thread and keeps each thread's order.

Flow control (README, "Delivery under load"). Jupyter Server drops IOPub
messages past its rate limit, so the sender keeps comm traffic within a rate
budget (``rate_budget.py``):

- Under budget, with nothing waiting, a message goes out at once. This fast
  path takes no lock.
- Over budget, a widget ``update`` of a model whose views render from current
  state (``coalescible.py``) waits, and later updates of that widget merge into
  it while it waits (``widget_updates.py``).
- Anything else goes out at once on credit (at most a second of budget, so
  the server's window still has room) when nothing waits but such updates of
  other comms; otherwise it waits in order behind what waits.
- An update that tells the page where output goes (the ``Output`` widget's
  ``msg_id``, ``coalescible.OUTPUT_ROUTING_TRAITS``) never waits behind other
  comms: the output printed next goes to IOPub at once, outside the budget,
  and must find the page capturing (or no longer capturing). It goes out at
  once, on credit if it can; if its own comm has messages waiting, the
  sending thread waits until it is sent.

What waits goes out in order at the budget's rate from a background thread, and
all of it when the cell or comm callback ends (the shell's ``post_execute``) or
on ``flush``. The order of each comm's messages is never changed: a message of
a comm with something waiting waits behind it, so a custom message is never
overtaken by its widget's held update. Across comms, only the waiting state of
coalescible widgets moves (merged earlier, or overtaken on credit): every other
message keeps the order it was sent in. The sending thread is held back only
while more than the queue's cap waits (messages and bytes), and stays
interruptible.

Comms the garbage collector finds are not closed from their finalizer (which
can run inside any lock of any thread): ``close_later`` only appends the comm
to a deque, and the sender closes it at its next send, flush, or from the
background thread, through the same queue as every other message.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
import typing as t

from ..iopub.wire import IOPubBatch, MessageWriter
from .coalescible import (
    OUTPUT_ROUTING_TRAITS,
    Rules,
    looks_like_update,
    mergeable,
    model_of,
    parse_rules,
    routes_output,
)
from .rate_budget import RateBudget
from .stats import CommDelivery, DeliveryStats, model_label

__all__ = ["CommFlow", "CommSender", "DeliveryStats", "flow_of"]
from .widget_updates import WidgetUpdate

if t.TYPE_CHECKING:
    from ..protocol.comm import BaseComm

logger = logging.getLogger("kernel_comm_ext")

# Never spin on a budget that is about to allow the next message.
_MIN_WAIT = 0.0005
# How often the idle background thread looks for comms the garbage collector found
# (a finalizer takes no lock, so it cannot wake the thread).
_IDLE_POLL = 1.0
# How often a held-back sender re-checks (a wake-up may be missed by an interrupt).
_CAP_POLL = 0.1
# After an interrupt, no thread is held back or made to wait for this long, so
# the cell's error and idle status go out.
_AFTER_INTERRUPT = 2.0
# Most messages the drain takes out of the queue at once (then looks again).
_DRAIN_BATCH = 64

#: Defaults of the queue's cap.
DEFAULT_QUEUE_MESSAGES = 100_000
DEFAULT_QUEUE_BYTES = 256 * 1024 * 1024


class CommFlow:
    """What the sender knows and counts of one comm; it lives on the comm (``comm.delivery``).

    Kept on the comm, it survives ``%reload_ext``: the new sender knows the
    model of a widget opened under the old one.
    """

    __slots__ = (
        "largest_queue",
        "max_wait",
        "merged",
        "model",
        "output_traits",
        "queued",
        "wait_seconds",
        "waited",
    )

    def __init__(self, model: tuple[str, str] | None) -> None:
        #: (model module, model name) from the comm's comm_open; None: unknown.
        self.model = model
        #: The model's traits that say where output goes (None: it has none).
        self.output_traits = OUTPUT_ROUTING_TRAITS.get(model) if model is not None else None
        self.merged = self.waited = self.queued = self.largest_queue = 0
        self.wait_seconds = self.max_wait = 0.0


class _Entry:
    """One message waiting in the queue."""

    __slots__ = (
        "buffers",
        "comm",
        "content",
        "flow",
        "in_flight",
        "metadata",
        "msg_type",
        "nbytes",
        "ordered",
        "parent",
        "sent",
        "since",
        "update",
    )

    def __init__(
        self,
        comm: BaseComm,
        flow: CommFlow,
        msg_type: str,
        content: dict[str, t.Any],
        metadata: dict[str, t.Any],
        parent: dict[str, t.Any],
        buffers: list[memoryview] | None,
        update: WidgetUpdate | None,
        ordered: bool,
    ) -> None:
        self.comm = comm
        self.flow = flow
        #: Not a coalescible update: nothing of another comm may overtake it.
        self.ordered = ordered
        self.msg_type = msg_type
        self.content = content
        self.metadata = metadata
        self.parent = parent
        self.buffers = buffers
        #: The update this message carries, when later ones may merge into it.
        self.update = update
        self.nbytes = sum(b.nbytes for b in buffers) if buffers else 0
        self.since = time.monotonic()
        #: Taken out of the queue, being sent: nothing merges into it any more.
        self.in_flight = False
        #: Sent (or given up on after an error): counted out of the queue.
        self.sent = False


def flow_of(comm: t.Any) -> CommFlow:
    """The comm's ``CommFlow``, made (model unknown) if it has none."""
    flow = getattr(comm, "delivery", None)
    if flow is None:
        flow = CommFlow(None)
        with contextlib.suppress(AttributeError):
            comm.delivery = flow
    return t.cast(CommFlow, flow)


class CommSender:
    """Sends comm messages through a kernel's session on its IOPub socket.

    ``rate_budget`` is in messages per second (0: no budget, everything is
    sent at once); ``coalesce_updates`` merges waiting updates of coalescible
    widgets (``coalescible.py``, plus ``coalescible`` entries); at most
    ``max_messages`` and ``max_bytes`` wait before the sending thread is held
    back (0: no cap).
    """

    def __init__(
        self,
        kernel: t.Any,
        rate_budget: float = 0.0,
        coalesce_updates: bool = True,
        *,
        coalescible: t.Iterable[str] = (),
        max_messages: int = DEFAULT_QUEUE_MESSAGES,
        max_bytes: int = DEFAULT_QUEUE_BYTES,
    ) -> None:
        self.session = kernel.session
        self.iopub_socket = IOPubBatch.wrap(kernel.iopub_socket)
        self._writer = MessageWriter(kernel.session)
        # Guards the queue and the counts below; never held while sending.
        self._cond = threading.Condition(threading.Lock())
        # Held while sending what was taken out of the queue: one drain at a time.
        self._drain_lock = threading.Lock()
        # A send from ipykernel's IOPub thread never waits: all IOPub output would wait.
        self._iopub_thread = getattr(getattr(kernel, "iopub_thread", None), "thread", None)
        self._queue: collections.deque[_Entry] = collections.deque()
        # The last entry of each comm still queued or being sent.
        self._tail: dict[str, _Entry] = {}
        # Entries queued or being sent, and their bytes: the fast path reads the count.
        self._waiting = 0
        # Of those, the ones that are not coalescible updates.
        self._ordered_waiting = 0
        self._waiting_bytes = 0
        # Comms found by the garbage collector, to close (appended by finalizers).
        self._collected: collections.deque[BaseComm] = collections.deque()
        # Set on a thread while it closes collected comms: each close sends
        # through ``send``, which must not start closing the rest again.
        self._closing_collected = threading.local()
        self._budget: RateBudget | None = None
        self._coalesce = coalesce_updates
        self._rules: Rules = parse_rules(coalescible)
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._flusher: threading.Thread | None = None
        self._flusher_lock = threading.Lock()
        self._closed = False
        self._interrupted_at = -_AFTER_INTERRUPT
        self._sent = self._coalesced = self._waited = self._errors = 0
        self._owed = self._held_back = self._collected_closes = 0
        self._largest_queue = self._largest_queue_bytes = 0
        self._wait_seconds = self._max_wait = self._held_back_seconds = 0.0
        self.configure(
            rate_budget,
            coalesce_updates,
            coalescible=coalescible,
            max_messages=max_messages,
            max_bytes=max_bytes,
        )
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
        if self._collected:
            self.close_collected()
        budget = self._budget
        if msg_type == "comm_open":
            # Jupyter Server does not count comm_open; neither does the budget.
            comm.delivery = CommFlow(model_of(content))  # type: ignore[attr-defined]
        elif budget is not None and (self._waiting or not budget.take()):
            self._send_over_budget(comm, msg_type, content, metadata, parent, buffers)
            return
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

    def _send_over_budget(
        self,
        comm: BaseComm,
        msg_type: str,
        content: dict[str, t.Any],
        metadata: dict[str, t.Any],
        parent: dict[str, t.Any],
        buffers: list[memoryview] | None,
    ) -> None:
        flow = flow_of(comm)
        update, may_merge = self._parse_update(flow, msg_type, content, metadata, parent, buffers)
        output_traits = flow.output_traits
        if output_traits is not None and not may_merge and routes_output(output_traits, content):
            self._send_output_routing(comm, flow, msg_type, content, metadata, parent, buffers)
            return
        with self._cond:
            tail = self._tail.get(comm.comm_id)
            budget = self._budget
            if tail is not None or budget is None:
                if (
                    may_merge
                    and tail is not None
                    and tail.update is not None
                    and not tail.in_flight
                    and update is not None
                ):
                    tail.update.merge(update)
                    self._coalesced += 1
                    flow.merged += 1
                    if buffers or tail.nbytes:
                        self._recount_bytes(tail)
                    return
                if tail is None and not self._waiting:
                    send_now = True  # the budget was turned off meanwhile
                else:
                    self._enqueue(
                        comm, flow, msg_type, content, metadata, parent, buffers, update, may_merge
                    )
                    send_now = False
            elif not self._waiting and budget.take():
                send_now = True
            elif not may_merge and not self._ordered_waiting and budget.owe():
                self._owed += 1
                send_now = True
            else:
                self._enqueue(
                    comm, flow, msg_type, content, metadata, parent, buffers, update, may_merge
                )
                send_now = False
            if not send_now and self._over_cap() and self._may_wait():
                self._hold_back()
        if send_now:
            self._emit(comm, msg_type, content, metadata, parent, buffers)

    def _parse_update(
        self,
        flow: CommFlow,
        msg_type: str,
        content: dict[str, t.Any],
        metadata: dict[str, t.Any],
        parent: dict[str, t.Any],
        buffers: list[memoryview] | None,
    ) -> tuple[WidgetUpdate | None, bool]:
        """The update of a coalescible widget this message carries, and whether it may merge."""
        if msg_type != "comm_msg" or not self._coalesce or flow.model is None:
            return None, False
        traits = self._rules.get(flow.model)
        if traits is None or not looks_like_update(content):
            return None, False
        update = WidgetUpdate.parse(msg_type, content, metadata, parent, buffers)
        return update, update is not None and mergeable(traits, update.keys())

    def _send_output_routing(
        self,
        comm: BaseComm,
        flow: CommFlow,
        msg_type: str,
        content: dict[str, t.Any],
        metadata: dict[str, t.Any],
        parent: dict[str, t.Any],
        buffers: list[memoryview] | None,
    ) -> None:
        """Send an update that says where output goes now, behind its own comm's messages only."""
        with self._cond:
            entry = None
            if self._tail.get(comm.comm_id) is None:
                budget = self._budget
                # Counted against the budget, on credit when it can be; never held.
                if budget is not None and not budget.take() and budget.owe():
                    self._owed += 1
            else:
                entry = self._enqueue(
                    comm, flow, msg_type, content, metadata, parent, buffers, None, False
                )
        if entry is None:
            self._emit(comm, msg_type, content, metadata, parent, buffers)
        else:
            self._send_through(entry)

    def _enqueue(
        self,
        comm: BaseComm,
        flow: CommFlow,
        msg_type: str,
        content: dict[str, t.Any],
        metadata: dict[str, t.Any],
        parent: dict[str, t.Any],
        buffers: list[memoryview] | None,
        update: WidgetUpdate | None,
        coalescible: bool,
    ) -> _Entry:
        """Put a message at the end of the queue (under the lock)."""
        entry = _Entry(
            comm, flow, msg_type, content, metadata, parent, buffers, update, not coalescible
        )
        if entry.ordered:
            self._ordered_waiting += 1
        queue = self._queue
        queue.append(entry)
        self._tail[comm.comm_id] = entry
        self._waiting += 1
        self._waiting_bytes += entry.nbytes
        self._waited += 1
        flow.waited += 1
        flow.queued += 1
        flow.largest_queue = max(flow.largest_queue, flow.queued)
        self._largest_queue = max(self._largest_queue, self._waiting)
        self._largest_queue_bytes = max(self._largest_queue_bytes, self._waiting_bytes)
        if len(queue) == 1:
            self._cond.notify_all()  # the background thread waits for the first one
        return entry

    def _send_through(self, entry: _Entry) -> None:
        """Send what waits, at the budget's rate, until ``entry`` is sent (^C ends the wait).

        Where this thread may not wait, the background thread sends it.
        """
        if not self._may_wait():
            return
        self._drain_at_rate(lambda: entry.sent, may_wait=True)
        if not entry.sent:
            self._drain(limited=False)  # the budget was turned off meanwhile

    def _drain_at_rate(self, done: t.Callable[[], bool], may_wait: bool) -> None:
        """Send what the budget allows until ``done()`` (read under the lock) or the budget is off.

        Waits for the budget in between only if ``may_wait``; ^C ends the wait.
        """
        try:
            while True:
                self._drain()
                with self._cond:
                    budget = self._budget
                    if done() or not may_wait or budget is None:
                        return
                    wait = budget.wait_time()
                    if wait > 0:
                        self._cond.wait(max(wait, _MIN_WAIT))
        except KeyboardInterrupt:
            self._interrupted_at = time.monotonic()
            raise

    def _recount_bytes(self, entry: _Entry) -> None:
        """Count the buffers of a merged update again (under the lock)."""
        held = entry.update.buffers if entry.update is not None else None
        nbytes = sum(buf.nbytes for bufs in held.values() for _, buf in bufs) if held else 0
        self._waiting_bytes += nbytes - entry.nbytes
        entry.nbytes = nbytes

    def _over_cap(self) -> bool:
        return bool(
            (self._max_messages and self._waiting > self._max_messages)
            or (self._max_bytes and self._waiting_bytes > self._max_bytes)
        )

    def _may_wait(self) -> bool:
        """Whether this thread may wait: not the IOPub thread, nor the sender's, nor after ^C."""
        current = threading.current_thread()
        return (
            current is not self._iopub_thread
            and current is not self._flusher
            and time.monotonic() - self._interrupted_at > _AFTER_INTERRUPT
        )

    def _hold_back(self) -> None:
        """Wait (under the lock) until the queue is back under its cap; ^C ends the wait."""
        start = time.monotonic()
        self._held_back += 1
        try:
            while self._over_cap() and not self._closed and self._budget is not None:
                self._cond.wait(_CAP_POLL)
        except KeyboardInterrupt:
            self._interrupted_at = time.monotonic()
            raise
        finally:
            self._held_back_seconds += time.monotonic() - start

    # the queue

    def _drain(self, limited: bool = True) -> None:
        """Send what waits, oldest first: what the budget allows, or (not ``limited``) all."""
        with self._drain_lock:
            while True:
                with self._cond:
                    batch = self._take(limited)
                if not batch:
                    return
                try:
                    for entry in batch:
                        self._emit_entry(entry)
                finally:
                    with self._cond:
                        self._sent_off(batch)

    def _take(self, limited: bool) -> list[_Entry]:
        """Take the next messages the budget allows out of the queue (under the lock)."""
        queue = self._queue
        budget = self._budget if limited else None
        batch: list[_Entry] = []
        while queue and len(batch) < _DRAIN_BATCH:
            if budget is not None and not budget.take():
                break
            entry = queue.popleft()
            entry.in_flight = True
            batch.append(entry)
        return batch

    def _sent_off(self, batch: list[_Entry]) -> None:
        """Count out entries that were sent (under the lock); wake who waits for room."""
        now = time.monotonic()
        tail = self._tail
        for entry in batch:
            entry.sent = True
            waited = now - entry.since
            flow = entry.flow
            flow.queued -= 1
            flow.wait_seconds += waited
            flow.max_wait = max(flow.max_wait, waited)
            self._wait_seconds += waited
            self._max_wait = max(self._max_wait, waited)
            self._waiting -= 1
            self._waiting_bytes -= entry.nbytes
            if entry.ordered:
                self._ordered_waiting -= 1
            comm_id = entry.comm.comm_id
            if tail.get(comm_id) is entry:
                del tail[comm_id]
        if not tail:
            # A dict keeps the table it grew to; clear() gives it back.
            tail.clear()
        self._cond.notify_all()

    def _start_flusher(self) -> None:
        """Start the background thread once a budget is set; never under the sender's lock."""
        with self._flusher_lock:
            if self._flusher is not None or self._closed or self._budget is None:
                return
            self._flusher = threading.Thread(
                target=self._run_flusher, name="kernel-comm-ext-flusher", daemon=True
            )
            self._flusher.start()

    def _run_flusher(self) -> None:
        """Send what waits whenever the budget allows, and close collected comms, until closed."""
        while not self._closed:
            try:
                if self._collected:
                    self.close_collected()
                with self._cond:
                    if self._closed:
                        return
                    if not self._queue:
                        self._cond.wait(_IDLE_POLL)
                        continue
                    budget = self._budget
                    wait = budget.wait_time() if budget is not None else 0.0
                    if wait > 0:
                        self._cond.wait(max(wait, _MIN_WAIT))
                        continue
                self._drain()
            except Exception:
                logger.exception("kernel-comm-ext: the background sender failed; it goes on")
                time.sleep(_CAP_POLL)

    def flush(self) -> None:
        """Send everything that waits, waiting for the budget (^C ends the wait).

        Runs when a cell or comm callback ends (``post_execute``), so the page
        has the cell's last widget state before the cell's idle status. On the
        IOPub thread, and just after an interrupt, it sends only what the
        budget allows now; the background thread sends the rest.
        """
        if self._collected:
            self.close_collected()
        if not self._waiting:
            return
        self._drain_at_rate(lambda: not self._queue, may_wait=self._may_wait())

    # closes found by the garbage collector

    def close_later(self, comm: BaseComm) -> bool:
        """Queue the close of a comm the garbage collector found; False once this sender is closed.

        Called from the comm's finalizer, which can run inside any lock of any
        thread: it takes no lock and sends nothing (``deque.append`` is atomic).
        """
        if self._closed:
            return False
        self._collected.append(comm)
        return True

    def close_collected(self) -> None:
        """Close the comms the garbage collector found (their comm_close goes through the queue).

        On a thread already closing them, returns at once: its outer call
        takes the rest, so a long run of closes never nests.
        """
        closing = self._closing_collected
        if getattr(closing, "active", False):
            return
        closing.active = True
        try:
            collected = self._collected
            while collected:
                try:
                    comm = collected.popleft()
                except IndexError:  # another thread took the last one
                    return
                self._collected_closes += 1
                try:
                    # Collected, so no longer registered: nothing to unregister.
                    comm.close(deleting=True)
                except Exception:
                    self._errors += 1
                    logger.exception("Could not close the collected comm %s", comm.comm_id)
        finally:
            closing.active = False

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

    def _emit_entry(self, entry: _Entry) -> None:
        # Whoever sends a waiting message (the background thread, a flush) must
        # not get its error: it is logged with its traceback.
        content, buffers = entry.content, entry.buffers
        update = entry.update
        if update is not None and update.merged:
            content, buffers = update.message()
        try:
            self._emit(entry.comm, entry.msg_type, content, entry.metadata, entry.parent, buffers)
        except Exception:
            self._errors += 1
            logger.exception(
                "Could not send the waiting %s of comm %s", entry.msg_type, entry.comm.comm_id
            )

    # settings and life cycle

    def configure(
        self,
        rate_budget: float,
        coalesce_updates: bool = True,
        *,
        coalescible: t.Iterable[str] | None = None,
        max_messages: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        """Apply new settings; without a budget, what waits is sent at once.

        A bad ``coalescible`` entry raises ``coalescible.BadRule`` and changes nothing.
        """
        if rate_budget < 0:
            raise ValueError(f"rate_budget must be >= 0 messages per second, not {rate_budget!r}")
        rules = parse_rules(coalescible) if coalescible is not None else None
        with self._cond:
            self._coalesce = coalesce_updates
            if rules is not None:
                self._rules = rules
            if max_messages is not None:
                self._max_messages = max_messages
            if max_bytes is not None:
                self._max_bytes = max_bytes
            if rate_budget == 0 or self._closed:
                self._budget = None
            elif self._budget is None or self._budget.rate != rate_budget:
                self._budget = RateBudget(rate_budget)
            unlimited = self._budget is None
            self._cond.notify_all()
        if unlimited:
            self._drain(limited=False)
        self._start_flusher()

    def close(self) -> None:
        """Send what waits, stop the background thread; later messages are sent directly."""
        self.flush()
        with self._cond:
            self._closed = True
            self._budget = None
            self._cond.notify_all()
            flusher = self._flusher
        self._drain(limited=False)
        self.close_collected()
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join(timeout=5)
        if self._events is not None:
            try:
                self._events.unregister("post_execute", self.flush)
            except ValueError:
                logger.debug("post_execute flush was not registered")

    def stats(self, comms: t.Iterable[t.Any] = ()) -> DeliveryStats:
        """What this sender did so far, in total and for each of ``comms`` that has figures.

        Counts from several threads are approximate.
        """
        budget = self._budget
        per_comm = []
        for comm in comms:
            flow = getattr(comm, "delivery", None)
            if isinstance(flow, CommFlow):
                per_comm.append(_comm_delivery(comm, flow, self._rules))
        return DeliveryStats(
            sent=self._sent,
            coalesced=self._coalesced,
            waited=self._waited,
            waiting=self._waiting,
            waiting_bytes=self._waiting_bytes,
            wait_seconds=self._wait_seconds,
            max_wait_seconds=self._max_wait,
            largest_queue=self._largest_queue,
            largest_queue_bytes=self._largest_queue_bytes,
            owed=self._owed,
            held_back=self._held_back,
            held_back_seconds=self._held_back_seconds,
            collected_closes=self._collected_closes,
            errors=self._errors,
            rate_budget=budget.rate if budget is not None else 0.0,
            coalesce_updates=self._coalesce,
            max_messages=self._max_messages,
            max_bytes=self._max_bytes,
            comms=tuple(per_comm),
        )


def _comm_delivery(comm: t.Any, flow: CommFlow, rules: Rules) -> CommDelivery:
    traits = rules.get(flow.model) if flow.model is not None else None
    if traits is None:
        coalescible = "no"
    elif "*" in traits:
        coalescible = "yes"
    else:
        coalescible = ", ".join(sorted(traits))
    return CommDelivery(
        comm_id=str(comm.comm_id),
        model=model_label(flow.model),
        coalescible=coalescible,
        merged=flow.merged,
        waited=flow.waited,
        waiting=flow.queued,
        wait_seconds=flow.wait_seconds,
        max_wait_seconds=flow.max_wait,
        largest_queue=flow.largest_queue,
    )
