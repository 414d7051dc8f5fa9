"""The ``%comm`` report: tables of open comms and targets, and extra sections.

Pure functions of a comm manager's registry; ``magic.py`` parses the command
line and returns a ``Report`` of what these build: plain text for terminals,
HTML tables in a notebook. Comms of this package report their figures
(``BaseComm.stats()``); comms of another class, adopted from ipykernel's manager
when the extension loaded, show what is known of them. A widget comm is named
by its model (``IntSlider``, ``Layout``, ``FigureModel``), read from its
``comm_open`` by the sender.
"""

from __future__ import annotations

import dataclasses
import html
import time
import typing as t

from ..delivery.stats import layout, model_label
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
    #: The widget model (``IntSlider``), None when not a widget or not known.
    model: str | None = None

    @property
    def name(self) -> str:
        """What the table calls the comm: its widget model, else its target."""
        return self.model or self.target_name


class Report:
    """What ``%comm`` returns: plain text for terminals, HTML tables in a notebook."""

    def __init__(self, text: str, html_text: str) -> None:
        self.text = text
        self.html = html_text

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__

    def _repr_html_(self) -> str:
        return self.html


def comm_rows(comms: t.Mapping[str, t.Any]) -> list[CommRow]:
    """A row per open comm, oldest first (comms without figures last)."""
    rows = []
    for comm_id, comm in list(comms.items()):
        stats = comm.stats() if isinstance(comm, BaseComm) else None
        primary = getattr(comm, "primary", None)
        opened_by = MISSING if primary is None else ("kernel" if primary else "frontend")
        target = getattr(comm, "target_name", None)
        flow = getattr(comm, "delivery", None)
        model = model_label(getattr(flow, "model", None))
        rows.append(
            CommRow(str(comm_id), str(target) if target else MISSING, opened_by, stats, model)
        )
    rows.sort(key=lambda r: (r.stats is None, r.stats.opened_at if r.stats else 0.0))
    return rows


COMM_HEADER = (
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
_COMM_NUMBERS = {4, 5, 6, 7}


def comm_table(comms: t.Mapping[str, t.Any], now: float | None = None) -> str:
    """The ``%comm`` listing: one line per open comm with its traffic figures."""
    count, lines, notes = _comm_listing(comms, now)
    if len(lines) == 1:
        return count
    return "\n".join([count, layout(lines, right_aligned=_COMM_NUMBERS), *notes])


def comm_table_html(comms: t.Mapping[str, t.Any], now: float | None = None) -> str:
    """The same listing as an HTML table."""
    count, lines, notes = _comm_listing(comms, now)
    parts = [f"<p>{html.escape(count)}</p>"]
    if len(lines) > 1:
        parts.append(html_table(lines, right_aligned=_COMM_NUMBERS))
    parts.extend(f"<p><small>{html.escape(note)}</small></p>" for note in notes)
    return "\n".join(parts)


def _comm_listing(
    comms: t.Mapping[str, t.Any], now: float | None
) -> tuple[str, list[tuple[str, ...]], list[str]]:
    now = time.time() if now is None else now
    rows = comm_rows(comms)
    count = f"{len(rows)} open comm" + ("" if len(rows) == 1 else "s")
    lines: list[tuple[str, ...]] = [COMM_HEADER, *(_cells(row, now) for row in rows)]
    notes = []
    if any(row.model for row in rows):
        notes.append("widget comms (target jupyter.widget) are named by their model")
    if any(row.stats is None for row in rows):
        notes.append(
            f"{MISSING}: a comm of another class (opened before kernel-comm-ext was loaded);"
            " it keeps no figures"
        )
    return count, lines, notes


def html_table(lines: list[tuple[str, ...]], right_aligned: t.Collection[int] = ()) -> str:
    """An HTML table: the first line is the header."""
    header, *body = lines

    def row(cells: tuple[str, ...], tag: str) -> str:
        return (
            "<tr>"
            + "".join(
                f'<{tag} style="text-align:{"right" if i in right_aligned else "left"}">'
                f"{html.escape(cell)}</{tag}>"
                for i, cell in enumerate(cells)
            )
            + "</tr>"
        )

    return "\n".join(
        ["<table>", "<thead>" + row(header, "th") + "</thead>", "<tbody>"]
        + [row(cells, "td") for cells in body]
        + ["</tbody>", "</table>"]
    )


def section_html(title: str, body: str) -> str:
    """An extra section as HTML: its title, and its text as it is."""
    return f"<h4>{html.escape(title)}</h4>\n<pre>{html.escape(body)}</pre>"


def comm_report(comms: t.Mapping[str, t.Any], sections: list[tuple[str, str]]) -> Report:
    """The whole ``%comm`` listing: the comm table, then each extra section."""
    text = [comm_table(comms)]
    markup = [comm_table_html(comms)]
    for title, body in sections:
        text.extend(["", section(title, body)])
        markup.append(section_html(title, body))
    return Report("\n".join(text), "\n".join(markup))


def target_table(targets: t.Mapping[str, t.Any], comms: t.Mapping[str, t.Any]) -> str:
    """The ``%comm targets`` listing: each target, its callback and how many comms it has open."""
    count, lines = _target_listing(targets, comms)
    if len(lines) == 1:
        return count
    return count + "\n" + layout(lines, right_aligned={2})


def target_report(targets: t.Mapping[str, t.Any], comms: t.Mapping[str, t.Any]) -> Report:
    """``%comm targets`` as text and HTML."""
    count, lines = _target_listing(targets, comms)
    markup = f"<p>{html.escape(count)}</p>"
    if len(lines) > 1:
        markup += "\n" + html_table(lines, right_aligned={2})
    return Report(target_table(targets, comms), markup)


def _target_listing(
    targets: t.Mapping[str, t.Any], comms: t.Mapping[str, t.Any]
) -> tuple[str, list[tuple[str, ...]]]:
    open_per_target: dict[str, int] = {}
    for comm in list(comms.values()):
        name = getattr(comm, "target_name", None)
        if isinstance(name, str):
            open_per_target[name] = open_per_target.get(name, 0) + 1
    count = f"{len(targets)} comm target" + ("" if len(targets) == 1 else "s")
    lines: list[tuple[str, ...]] = [("target", "callback", "open comms")]
    for name, callback in sorted(targets.items()):
        lines.append((name, callable_name(callback), str(open_per_target.get(name, 0))))
    return count, lines


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
        return (row.comm_id, row.name, row.opened_by, *([MISSING] * 6))
    return (
        row.comm_id,
        row.name,
        row.opened_by,
        format_duration(now - st.opened_at),
        str(st.messages_in),
        str(st.messages_out),
        format_bytes(st.buffer_bytes_in),
        format_bytes(st.buffer_bytes_out),
        format_duration(now - st.last_activity) + " ago",
    )
