"""A dict that other threads can iterate while one thread changes it."""

from __future__ import annotations

import typing as t

K = t.TypeVar("K")
V = t.TypeVar("V")


class SnapshotDict(dict[K, V]):
    """A dict whose iteration walks a snapshot taken at once.

    ipykernel iterates ``comm_manager.comms.items()`` on the shell thread (for
    ``comm_info_request``) while other threads may open and close comms; a plain
    dict would raise "dictionary changed size during iteration". Copying a dict
    into a list is one C call, atomic under the GIL.
    """

    def __iter__(self) -> t.Iterator[K]:
        return iter(list(dict.keys(self)))

    def keys(self) -> list[K]:  # type: ignore[override]
        """The keys, as a list taken at once."""
        return list(dict.keys(self))

    def values(self) -> list[V]:  # type: ignore[override]
        """The values, as a list taken at once."""
        return list(dict.values(self))

    def items(self) -> list[tuple[K, V]]:  # type: ignore[override]
        """The items, as a list taken at once."""
        return list(dict.items(self))
