"""IOPubStats: the figures of the kernel's IOPub channel, and their ``%comm`` section."""

from __future__ import annotations

import dataclasses

from ..protocol.stats import format_bytes


@dataclasses.dataclass(frozen=True)
class IOPubStats:
    """Figures of the kernel's IOPub channel (``KernelCommManager.iopub_stats()``, ``%comm``)."""

    #: "lossless"; "off" (the setting, or unloaded, or the IOPub thread did
    #: not take the change in time: see ``reason``); "unavailable" (this
    #: kernel's IOPub thread is not one kernel-comm-ext can change).
    state: str
    #: Why the channel is unavailable, or off against the setting; None otherwise.
    reason: str | None = None
    #: The socket's send high-water mark (messages a reader may fall behind in zmq).
    sndhwm: int | None = None
    #: How often sends found a reader without room and waited, in how many
    #: messages, for how long in total and at most.
    waits: int = 0
    waited_messages: int = 0
    wait_seconds: float = 0.0
    longest_wait_seconds: float = 0.0
    #: How often, and how long in total, code sending was held back by the backlog cap.
    producer_waits: int = 0
    producer_wait_seconds: float = 0.0
    #: How often a reader took nothing for the stall timeout, so the channel fell
    #: back to dropping for it, and the messages that were waiting for it then.
    fallbacks: int = 0
    dropped: int = 0
    #: What waits in the kernel now, and the most it held.
    backlog_messages: int = 0
    backlog_bytes: int = 0
    peak_backlog_messages: int = 0
    peak_backlog_bytes: int = 0
    #: Work handed to the IOPub thread (messages, batches of comm messages, stream
    #: flushes) and the wake-ups of that thread it took (``scheduler.py``).
    handed_off: int = 0
    wakeups: int = 0

    def report_text(self) -> str | None:
        """The ``%comm`` section of these figures; None while there is no news.

        News: a send waited, a cell was held back, a stalled frontend was given
        up on, or the channel could not be made lossless in this kernel.
        """
        if self.state == "unavailable":
            return (
                "unavailable: ipykernel's own sending (zmq drops what a slow frontend misses)"
                + (f"; {self.reason}" if self.reason else "")
            )
        if self.state == "off" and self.reason:
            return f"off: {self.reason}"
        if self.state != "lossless" or not (self.waits or self.producer_waits or self.fallbacks):
            return None
        return "\n".join(
            [
                f"lossless, send high-water mark {self.sndhwm}",
                f"sends waited for a frontend: {self.waits} times,"
                f" {self.waited_messages} messages, {self.wait_seconds:.2f} s in all"
                f" (longest {self.longest_wait_seconds:.2f} s)",
                f"cells held back by the backlog cap: {self.producer_waits} times,"
                f" {self.producer_wait_seconds:.2f} s in all",
                f"stalled frontends given up on: {self.fallbacks} times,"
                f" {self.dropped} messages dropped for them",
                f"waiting in the kernel: {self.backlog_messages} messages"
                f" ({format_bytes(self.backlog_bytes)}), at most {self.peak_backlog_messages}"
                f" ({format_bytes(self.peak_backlog_bytes)})",
                f"handed to the IOPub thread: {self.handed_off} times, in {self.wakeups} wake-ups",
            ]
        )
