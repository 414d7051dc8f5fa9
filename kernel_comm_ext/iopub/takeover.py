"""IOPubTakeover: the one owner of kernel-comm-ext's changes to ipykernel's IOPub thread.

Three parts change how IOPub messages reach the wire, and this class starts,
stops, configures and reports them together:

- ``IOPubScheduler`` (``scheduler.py``) stands in for ``iopub_thread.schedule``;
- ``LosslessIOPub`` (``lossless.py``), when ``lossless`` is set, wraps the
  socket and gates the scheduler on the backlog cap;
- the sender's ``IOPubBatch`` (``wire.py``) batches comm messages in the
  scheduler's queue and, while lossless, counts them in the backlog.

``start`` happens whole or not at all: if lossless IOPub cannot be applied
(the IOPub thread does not take it in time, say), the scheduler is put back
too and ipykernel keeps its own IOPub sending; ``stats().reason`` says why.
Everything ipykernel-specific it relies on is in ``ipykernel_internals.py``.
"""

from __future__ import annotations

import dataclasses
import logging
import typing as t

from .ipykernel_internals import unsupported_reason
from .lossless import LosslessIOPub
from .scheduler import IOPubScheduler
from .socket import LosslessSocket
from .stats import IOPubStats
from .wire import IOPubBatch

BATCH_SETTING = "KernelCommManager.batch_iopub_wakeups"


@dataclasses.dataclass(frozen=True)
class IOPubSettings:
    """The settings of the IOPub takeover (``KernelCommManager`` traits of the same meaning)."""

    lossless: bool = True
    sndhwm: int = 10_000
    stall_timeout: float = 10.0
    max_messages: int = 100_000
    max_bytes: int = 256 * 1024 * 1024
    batch_wakeups: bool = True


class IOPubTakeover:
    """Takes over one kernel's IOPub thread (``start``) and gives it back (``stop``)."""

    def __init__(
        self,
        kernel: t.Any,
        batch: IOPubBatch | None,
        settings: IOPubSettings,
        log: logging.Logger | logging.LoggerAdapter[t.Any],
    ) -> None:
        self.kernel = kernel
        self.log = log
        self._batch = batch
        self._settings = settings
        self._scheduler: IOPubScheduler | None = None
        self._lossless: LosslessIOPub | None = None
        # Why ipykernel's IOPub thread is not taken over / not lossless against the setting.
        self._unavailable: str | None = None
        self._failure: str | None = None

    @property
    def started(self) -> bool:
        """Whether the IOPub thread is taken over (the scheduler stands in for ``schedule``)."""
        return self._scheduler is not None and self._scheduler.active

    @property
    def lossless(self) -> bool:
        """Whether the IOPub channel is lossless now."""
        return self._lossless is not None and self._lossless.active

    # life cycle

    def start(self) -> bool:
        """Take the IOPub thread over as the settings say; False (and a log line) if not.

        Whole or not at all: on failure nothing of the takeover is left in place.
        """
        if self.started:
            return True
        iopub_thread = getattr(self.kernel, "iopub_thread", None)
        reason = unsupported_reason(iopub_thread) or _taken_over_by_another(iopub_thread)
        if reason is not None:
            self._unavailable = reason
            self.log.info("kernel-comm-ext: ipykernel keeps its own IOPub sending: %s", reason)
            return False
        self._unavailable = self._failure = None
        scheduler = IOPubScheduler(
            iopub_thread, batch_wakeups=self._settings.batch_wakeups, log=self.log
        )
        scheduler.start()
        self._scheduler = scheduler
        if self._batch is not None:
            self._batch.hand_off_through(scheduler.hand_off_queue)
        if self._settings.lossless and not self._start_lossless():
            failure = self._failure
            self.stop()
            self._failure = failure
            self.log.warning(
                "kernel-comm-ext: ipykernel keeps its own IOPub sending: %s"
                " (%%reload_ext kernel_comm_ext tries again)",
                failure,
            )
            return False
        return True

    def stop(self) -> None:
        """Give the IOPub thread back to ipykernel as it was."""
        self._stop_lossless()
        scheduler = self._scheduler
        if scheduler is not None and scheduler.active:
            if self._batch is not None:
                self._batch.hand_off_through(None)
            scheduler.stop()

    def _start_lossless(self) -> bool:
        scheduler = self._scheduler
        if scheduler is None or not scheduler.active:
            return False
        if self._lossless is not None and self._lossless.active:
            return True
        settings = self._settings
        lossless = LosslessIOPub(
            self.kernel,
            scheduler,
            sndhwm=settings.sndhwm,
            max_messages=settings.max_messages,
            max_bytes=settings.max_bytes,
            stall_timeout=settings.stall_timeout,
            log=self.log,
        )
        self._lossless = lossless
        if not lossless.start():
            self._failure = f"lossless IOPub is off: {lossless.failure}"
            return False
        self._failure = None
        if self._batch is not None:
            self._batch.backlog = lossless.backlog
        return True

    def _stop_lossless(self) -> None:
        lossless = self._lossless
        if lossless is None:
            return
        if self._batch is not None:
            self._batch.backlog = None
        lossless.stop()

    # settings and figures

    def configure(self, settings: IOPubSettings) -> None:
        """Apply new settings: lossless IOPub turns on or off now, batching at the next start."""
        old, self._settings = self._settings, settings
        if not self.started:
            return
        if settings.batch_wakeups != old.batch_wakeups:
            self.log.warning(
                "kernel-comm-ext: %s = %s takes effect at %%reload_ext kernel_comm_ext",
                BATCH_SETTING,
                settings.batch_wakeups,
            )
        if settings.lossless and not old.lossless:
            self._start_lossless()
        elif old.lossless and not settings.lossless:
            self._stop_lossless()
        if self._lossless is not None and self._lossless.active:
            self._lossless.configure(
                sndhwm=settings.sndhwm,
                max_messages=settings.max_messages,
                max_bytes=settings.max_bytes,
                stall_timeout=settings.stall_timeout,
            )

    def stats(self) -> IOPubStats:
        """Figures of the IOPub channel: waits, fallbacks, dropped messages, backlog, wake-ups."""
        if self._unavailable is not None:
            return IOPubStats(state="unavailable", reason=self._unavailable)
        stats = IOPubStats(state="off") if self._lossless is None else self._lossless.stats()
        if self._failure is not None:
            stats = dataclasses.replace(stats, reason=self._failure)
        scheduler = self._scheduler
        if scheduler is None:
            return stats
        return dataclasses.replace(stats, handed_off=scheduler.scheduled, wakeups=scheduler.wakeups)


def _taken_over_by_another(iopub_thread: t.Any) -> str | None:
    """Why another kernel-comm-ext manager holds ``iopub_thread`` already, or None."""
    if isinstance(getattr(iopub_thread.schedule, "__self__", None), IOPubScheduler):
        return "its IOPub thread is already scheduled by another kernel-comm-ext manager"
    if isinstance(iopub_thread.socket, LosslessSocket):
        return "its IOPub socket is already wrapped by another kernel-comm-ext manager"
    return None
