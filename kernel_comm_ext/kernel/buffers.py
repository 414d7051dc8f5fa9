"""Binary buffers of comm messages: any buffer-protocol object, never copied."""

from __future__ import annotations

import typing as t


def as_buffer_views(buffers: t.Iterable[t.Any]) -> list[memoryview]:
    """Memoryviews of ``buffers`` (bytes, bytearray, memoryview, NumPy arrays...), zero-copy.

    Raises TypeError for an object without the buffer protocol and ValueError
    for a non-contiguous one, before anything is sent.
    """
    views = []
    for index, buf in enumerate(buffers):
        try:
            view = buf if isinstance(buf, memoryview) else memoryview(buf)
        except TypeError:
            raise TypeError(
                f"comm buffer {index} ({type(buf).__name__}) does not support the buffer protocol;"
                " pass bytes, bytearray, memoryview or an array"
            ) from None
        if not view.contiguous:
            raise ValueError(
                f"comm buffer {index} is not contiguous (shape {view.shape}, strides"
                f" {view.strides}); send a contiguous copy, e.g. numpy.ascontiguousarray(a)"
            )
        views.append(view)
    return views
