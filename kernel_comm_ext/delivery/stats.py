"""The figures of flow control, in total and per comm (``delivery_stats()``, ``%comm``)."""

from __future__ import annotations

import dataclasses
import typing as t

#: Model modules whose model names drop their "Model" suffix in reports (``IntSlider``).
_SHORT_NAMES = ("@jupyter-widgets/",)


def model_label(model: tuple[str, str] | None) -> str | None:
    """How reports name a widget model: ``IntSlider``, ``Layout``, another library's name."""
    if model is None:
        return None
    module, name = model
    if module.startswith(_SHORT_NAMES) and name.endswith("Model") and len(name) > 5:
        return name[: -len("Model")]
    return name


@dataclasses.dataclass(frozen=True)
class CommDelivery:
    """What flow control did with one comm's messages."""

    comm_id: str
    #: The widget model (``IntSlider``), None when the comm's open named none.
    model: str | None
    #: Whether its updates may merge: "yes", "no", or the traits that may.
    coalescible: str
    #: Updates merged into a waiting one (messages saved).
    merged: int
    #: Messages that waited in the queue, and how many wait now.
    waited: int
    waiting: int
    #: Seconds the messages that went out waited, in total and at most.
    wait_seconds: float
    max_wait_seconds: float
    #: Most of its messages waiting at once.
    largest_queue: int


@dataclasses.dataclass(frozen=True)
class DeliveryStats:
    """What a CommSender did so far."""

    #: Messages put on the IOPub socket.
    sent: int
    #: Widget updates merged into a waiting one (messages saved).
    coalesced: int
    #: Messages that waited for the budget; waiting now (and their buffer bytes).
    waited: int
    waiting: int
    waiting_bytes: int
    #: Seconds the messages that went out waited, in total and at most.
    wait_seconds: float
    max_wait_seconds: float
    #: Most messages (and bytes of buffers) waiting at once.
    largest_queue: int
    largest_queue_bytes: int
    #: Messages sent at once on the budget's credit (nothing of their comm waited).
    owed: int
    #: Times a sending thread was held back at the queue's cap, and the seconds it took.
    held_back: int
    held_back_seconds: float
    #: Comms the garbage collector found and the sender closed.
    collected_closes: int
    #: Waiting messages that failed to send (logged with their traceback).
    errors: int
    #: The settings in force.
    rate_budget: float
    coalesce_updates: bool
    max_messages: int
    max_bytes: int
    #: Per comm, for the comms asked about (``KernelCommManager.delivery_stats``: all open ones).
    comms: tuple[CommDelivery, ...] = ()

    def report_lines(self) -> str | None:
        """A few lines for the ``%comm`` report; None until anything waited."""
        if not (self.waited or self.errors or self.held_back):
            return None
        budget = f"{self.rate_budget:g} msg/s" if self.rate_budget else "off"
        lines = [
            f"rate budget: {budget} (coalesce widget updates: {_on(self.coalesce_updates)},"
            f" queue cap: {_cap(self.max_messages)} messages, {_cap(self.max_bytes)} bytes)",
            f"sent: {self.sent}, widget updates coalesced (saved): {self.coalesced},"
            f" sent on credit: {self.owed}",
            f"waited: {self.waited} messages, {self.wait_seconds:.2f} s in all,"
            f" longest {self.max_wait_seconds:.2f} s; waiting now: {self.waiting}",
            f"largest queue: {self.largest_queue} messages, {self.largest_queue_bytes} bytes;"
            f" cell held back: {self.held_back} times, {self.held_back_seconds:.2f} s",
        ]
        if self.collected_closes:
            lines.append(f"comms closed after garbage collection: {self.collected_closes}")
        if self.errors:
            lines.append(f"waiting messages that failed to send (see the log): {self.errors}")
        table = rows(self)
        if len(table) > 1:
            lines.append("")
            lines.append("per comm (open comms that had messages merged or waiting):")
            lines.append(layout(table, right_aligned={3, 4, 5, 6, 7}))
        return "\n".join(lines)

    def busy_comms(self) -> list[CommDelivery]:
        """The comms that had messages merged or waiting, most merged and waited first."""
        busy = [c for c in self.comms if c.merged or c.waited]
        busy.sort(key=lambda c: (-c.merged - c.waited, c.comm_id))
        return busy


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _cap(n: int) -> str:
    return str(n) if n else "no"


def rows(stats: DeliveryStats) -> list[tuple[str, ...]]:
    """The per-comm table of the ``%comm`` report: a header, then one row per busy comm."""
    header = ("comm id", "model", "coalescible", "merged", "waited", "wait s", "longest s", "queue")
    table: list[tuple[str, ...]] = [header]
    for c in stats.busy_comms():
        table.append(
            (
                c.comm_id,
                c.model or "-",
                c.coalescible,
                str(c.merged),
                str(c.waited),
                f"{c.wait_seconds:.2f}",
                f"{c.max_wait_seconds:.2f}",
                str(c.largest_queue),
            )
        )
    return table


def layout(lines: list[tuple[str, ...]], right_aligned: t.Collection[int] = ()) -> str:
    """Text columns: each cell padded to its column's width, two spaces apart."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for line in lines:
        cells = [
            cell.rjust(width) if i in right_aligned else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


__all__: t.Sequence[str] = ("CommDelivery", "DeliveryStats", "layout", "model_label", "rows")
