"""Traffic figures of one comm, as tools and the ``%comm`` magic read them."""

from __future__ import annotations

import dataclasses
import typing as t


@dataclasses.dataclass(frozen=True)
class CommStats:
    """A snapshot of one comm's traffic; times are seconds since the epoch."""

    comm_id: str
    target_name: str
    opened_by: str
    opened_at: float
    last_activity: float
    messages_in: int
    messages_out: int
    buffer_bytes_in: int
    buffer_bytes_out: int
    dropped_after_close: int

    def as_dict(self) -> dict[str, t.Any]:
        """The figures as a plain dict (JSON-ready)."""
        return dataclasses.asdict(self)


def buffer_nbytes(buffers: t.Iterable[t.Any]) -> int:
    """Total size in bytes of buffer-protocol objects, without copying them."""
    total = 0
    for buf in buffers:
        try:
            total += memoryview(buf).nbytes
        except TypeError:
            continue
    return total


def format_bytes(n: int) -> str:
    """A byte count for people: exact below 1 KiB, else one decimal in KiB/MiB/GiB."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"
