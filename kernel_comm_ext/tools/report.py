"""The text of the ``%comm`` magic: tables of open comms and targets, and extra sections.

Pure functions of a comm manager's registry; ``magic.py`` parses the command
line and prints what these return. Comms of this package report their figures
(``BaseComm.stats()``); comms of another class, adopted from ipykernel's manager
when the extension loaded, show what is known of them.
"""

from __future__ import annotations

import dataclasses
import time
import typing as t

from ..protocol.comm import BaseComm
from ..protocol.stats import CommStats, format_bytes

MISSING = "-"


@dataclasses.dataclass(frozen=True)
class CommRow:
    """One line of the comm table: the figures of a comm, None where unknown."""

    comm_id: str
    target_name: str
    opened_by: str
    stats: CommStats | None


def comm_rows(comms: t.Mapping[str, t.Any]) -> list[CommRow]:
    """A row per open comm, oldest first (comms without figures last)."""
    rows = []
    for comm_id, comm in list(comms.items()):
        stats = comm.stats() if isinstance(comm, BaseComm) else None
        primary = getattr(comm, "primary", None)
        opened_by = MISSING if primary is None else ("kernel" if primary else "frontend")
        target = getattr(comm, "target_name", None)
        rows.append(CommRow(str(comm_id), str(target) if target else MISSING, opened_by, stats))
    rows.sort(key=lambda r: (r.stats is None, r.stats.opened_at if r.stats else 0.0))
    return rows


def comm_table(comms: t.Mapping[str, t.Any], now: float | None = None) -> str:
    """The ``%comm`` listing: one line per open comm with its traffic figures."""
    now = time.time() if now is None else now
    rows = comm_rows(comms)
    count = f"{len(rows)} open comm" + ("" if len(rows) == 1 else "s")
    if not rows:
        return count
    header = (
        "comm id",
        "target",
        "opened by",
        "age",
        "msgs in",
        "msgs out",
        "bytes in",
        "bytes out",
        "last active",
    )
    lines: list[tuple[str, ...]] = [header, *(_cells(row, now) for row in rows)]
    text = count + "\n" + _layout(lines, right_aligned={4, 5, 6, 7})
    if any(row.stats is None for row in rows):
        text += (
            f"\n{MISSING}: a comm of another class (opened before kernel-comm-ext was loaded);"
            " it keeps no figures"
        )
    return text


def target_table(targets: t.Mapping[str, t.Any], comms: t.Mapping[str, t.Any]) -> str:
    """The ``%comm targets`` listing: each target, its callback and how many comms it has open."""
    open_per_target: dict[str, int] = {}
    for comm in list(comms.values()):
        name = getattr(comm, "target_name", None)
        if isinstance(name, str):
            open_per_target[name] = open_per_target.get(name, 0) + 1
    count = f"{len(targets)} comm target" + ("" if len(targets) == 1 else "s")
    if not targets:
        return count
    lines: list[tuple[str, ...]] = [("target", "callback", "open comms")]
    for name, callback in sorted(targets.items()):
        lines.append((name, callable_name(callback), str(open_per_target.get(name, 0))))
    return count + "\n" + _layout(lines, right_aligned={2})


def callable_name(f: t.Any) -> str:
    """``module.qualname`` of a callable, for people."""
    qualname = getattr(f, "__qualname__", None)
    if qualname is None:
        return repr(f)
    module = getattr(f, "__module__", None)
    return f"{module}.{qualname}" if module else str(qualname)


def section(title: str, body: str) -> str:
    """An extra section of the report (a title line, then its text)."""
    return f"{title}\n{body}" if body else title


def format_duration(seconds: float) -> str:
    """A duration for people: ``42s``, ``3m05s``, ``2h07m``, ``4d03h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _cells(row: CommRow, now: float) -> tuple[str, ...]:
    st = row.stats
    if st is None:
        return (row.comm_id, row.target_name, row.opened_by, *([MISSING] * 6))
    return (
        row.comm_id,
        row.target_name,
        row.opened_by,
        format_duration(now - st.opened_at),
        str(st.messages_in),
        str(st.messages_out),
        format_bytes(st.buffer_bytes_in),
        format_bytes(st.buffer_bytes_out),
        format_duration(now - st.last_activity) + " ago",
    )


def _layout(lines: list[tuple[str, ...]], right_aligned: set[int]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for line in lines:
        cells = [
            cell.rjust(width) if i in right_aligned else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)
