"""The ``%comm`` line magic: open comms with their traffic figures, targets, closing a comm.

``load_ipython_extension`` registers it and ``unload_ipython_extension`` puts
back whatever ``%comm`` was before. It reads ``kernel.comm_manager``, so it
shows what is known of any comm in the registry; the tables are built in
``report.py``, and sections a manager adds with ``add_report_section`` follow
the comm table.
"""

from __future__ import annotations

import typing as t
import weakref

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from . import report

USAGE = """\
%comm              list open comms: id, target, who opened it, age, messages and
                   buffer bytes in and out, last activity
%comm targets      list registered comm targets and their open comms
%comm close ID     close the comm with that id (or a unique start of it)"""

# The %comm each shell had before ours, to put back on unload (None: there was none).
_previous: weakref.WeakKeyDictionary[t.Any, t.Any] = weakref.WeakKeyDictionary()


@magics_class
class CommMagics(Magics):
    """Magics of kernel-comm-ext."""

    @line_magic
    def comm(self, line: str = "") -> report.Report | None:
        """Inspect the kernel's comms.

        %comm              list open comms: id, target, who opened it, age, messages and
                           buffer bytes in and out, last activity
        %comm targets      list registered comm targets and their open comms
        %comm close ID     close the comm with that id (or a unique start of it)

        The listings are returned: a notebook shows them as HTML tables, a
        terminal as text (``print(get_ipython().run_line_magic("comm", ""))`` too).
        """
        words = line.split()
        command, args = (words[0], words[1:]) if words else ("list", [])
        manager = self._manager()
        if command == "list" and not args:
            sections = getattr(manager, "report_sections", None)
            return report.comm_report(manager.comms, sections() if callable(sections) else [])
        if command == "targets" and not args:
            return report.target_report(manager.targets, manager.comms)
        if command == "close" and len(args) == 1:
            comm = _find_comm(manager.comms, args[0])
            comm.close()
            print(f"closed comm {comm.comm_id} (target {getattr(comm, 'target_name', None)!r})")
        elif command in {"help", "-h", "--help"}:
            print(USAGE)
        else:
            raise UsageError(f"%comm {line.strip()}: not understood. Usage:\n{USAGE}")
        return None

    def _manager(self) -> t.Any:
        manager = getattr(getattr(self.shell, "kernel", None), "comm_manager", None)
        if manager is None:
            raise UsageError("%comm: this IPython has no kernel comm manager")
        return manager


def register(shell: t.Any) -> None:
    """Make ``%comm`` ours in ``shell``, remembering the one it replaces."""
    line_magics = shell.magics_manager.magics["line"]
    existing = line_magics.get("comm")
    if not _is_ours(existing) and shell not in _previous:
        _previous[shell] = existing
    shell.register_magics(CommMagics)


def unregister(shell: t.Any) -> None:
    """Put back the ``%comm`` that ``register`` replaced (or none)."""
    line_magics = shell.magics_manager.magics["line"]
    if not _is_ours(line_magics.get("comm")):
        return
    previous = _previous.pop(shell, None)
    if previous is None:
        line_magics.pop("comm", None)
    else:
        line_magics["comm"] = previous


def _is_ours(magic: t.Any) -> bool:
    return isinstance(getattr(magic, "__self__", None), CommMagics)


def _find_comm(comms: t.Mapping[str, t.Any], wanted: str) -> t.Any:
    """The open comm whose id is ``wanted`` or starts with it; UsageError if none or several."""
    comm = comms.get(wanted)
    if comm is not None:
        return comm
    matches = [c for comm_id, c in list(comms.items()) if comm_id.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"%comm close: no open comm has the id {wanted!r} (see %comm)")
    ids = ", ".join(sorted(c.comm_id for c in matches))
    raise UsageError(f"%comm close: {wanted!r} is the start of several comm ids: {ids}")
