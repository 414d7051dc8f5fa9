"""Coalescing ipywidgets ``update`` messages: which messages qualify, and how two merge.

An ipywidgets ``update`` is a ``comm_msg`` whose data is ``{"method": "update",
"state": {...}, "buffer_paths": [[key, ...], ...]}``, with one binary buffer
per path. The frontend puts buffer ``i`` into the state at ``buffer_paths[i]``;
the first element of a path is a top-level state key, and a key whose whole
value is a buffer is absent from ``state`` (see ipywidgets' ``_remove_buffers``).

Merging a newer update into an older one of the same comm gives the message
that leaves the frontend in the same state as both in a row: every key the
newer one sets (in its state or through a buffer path) replaces the older
value of that key together with the older buffers under it; keys only the older
one sets stay, with their buffers; paths and buffers stay aligned. The newest
parent header, metadata and other content keys win.

The sender (``sender.py``) decides when to hold and merge, and
``coalescible.py`` which widgets may be merged at all; this module knows only
the message format.
"""

from __future__ import annotations

import typing as t

# Buffers of one top-level state key: (path, buffer) pairs in the order sent.
KeyBuffers = list[tuple[t.Sequence[t.Any], memoryview]]


class WidgetUpdate:
    """One ipywidgets ``update`` (or several merged), waiting to be sent."""

    __slots__ = ("buffers", "content", "merged", "metadata", "parent", "state")

    def __init__(
        self,
        content: dict[str, t.Any],
        metadata: dict[str, t.Any],
        parent: dict[str, t.Any],
        state: dict[str, t.Any],
        buffers: dict[str, KeyBuffers] | None,
    ) -> None:
        #: The newest message's content (its ``data`` is rebuilt by ``message``).
        self.content = content
        self.metadata = metadata
        self.parent = parent
        #: The merged state, a dict of our own.
        self.state = state
        #: The merged buffers by top-level state key (None: no buffers).
        self.buffers = buffers
        #: How many later updates were merged into this one (messages saved).
        self.merged = 0

    @classmethod
    def parse(
        cls,
        msg_type: str,
        content: dict[str, t.Any],
        metadata: dict[str, t.Any],
        parent: dict[str, t.Any],
        buffers: list[memoryview] | None,
    ) -> WidgetUpdate | None:
        """The update a message carries, or None when it is anything else.

        Anything that is not a well-formed update (another method, a state
        that is not a dict, buffer paths that do not match the buffers) is
        None: it is sent as it is, never merged.
        """
        if msg_type != "comm_msg":
            return None
        data = content.get("data")
        if type(data) is not dict or data.get("method") != "update":
            return None
        state = data.get("state")
        if type(state) is not dict:
            return None
        paths = data.get("buffer_paths")
        if paths is None:
            paths = ()
        if not isinstance(paths, (list, tuple)) or len(paths) != (len(buffers) if buffers else 0):
            return None
        by_key: dict[str, KeyBuffers] | None = None
        if buffers:
            by_key = {}
            for path, buf in zip(paths, buffers, strict=True):
                if not isinstance(path, (list, tuple)) or not path or type(path[0]) is not str:
                    return None
                by_key.setdefault(path[0], []).append((path, buf))
        return cls(content, metadata, parent, dict(state), by_key)

    def keys(self) -> list[str]:
        """The top-level state keys this update sets (in its state or through buffers)."""
        if not self.buffers:
            return list(self.state)
        return [*self.state, *(key for key in self.buffers if key not in self.state)]

    def merge(self, newer: WidgetUpdate) -> None:
        """Merge ``newer`` (a later update of the same comm) into this one, in place."""
        state = self.state
        old_buffers = self.buffers
        for key, value in newer.state.items():
            state[key] = value
            if old_buffers:
                old_buffers.pop(key, None)
        if newer.buffers:
            if old_buffers is None:
                old_buffers = self.buffers = {}
            for key, entries in newer.buffers.items():
                if key not in newer.state:
                    # The whole value of ``key`` is a buffer now.
                    state.pop(key, None)
                old_buffers[key] = entries
        self.content = newer.content
        self.metadata = newer.metadata
        self.parent = newer.parent
        self.merged += newer.merged + 1

    def message(self) -> tuple[dict[str, t.Any], list[memoryview] | None]:
        """The content and buffers of the one message that carries this update."""
        paths: list[t.Sequence[t.Any]] = []
        buffers: list[memoryview] = []
        if self.buffers:
            for entries in self.buffers.values():
                for path, buf in entries:
                    paths.append(path)
                    buffers.append(buf)
        data = dict(self.content["data"])
        data["state"] = self.state
        data["buffer_paths"] = paths
        content = dict(self.content)
        content["data"] = data
        return content, buffers or None
