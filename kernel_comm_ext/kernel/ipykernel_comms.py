"""Comms of ipykernel's own comm classes, sent through the sender while installed.

Some libraries make ``ipykernel.comm.Comm`` (deprecated, but still there)
instead of calling ``comm.create_comm``: pyviz_comms does, for panel,
holoviews and bokeh in notebooks. Such a comm registers with our manager, so
the frontend's messages reach it, but ipykernel's ``publish_msg`` calls
``session.send`` on the IOPub socket itself, outside the rate budget, so
Jupyter Server drops part of a fast loop.

While installed, ``IPykernelComms`` stands in for two methods of ipykernel's
comm base class (``ipykernel.comm.comm.BaseComm``, which ``Comm`` inherits):

- ``publish_msg`` sends through the kernel's ``CommSender``, as a
  ``KernelComm`` does, and keeps the note ipykernel 7 reads to route the
  frontend's replies to the subshell that sent (``_reply_subshell_for``);
- ``__del__`` hands a comm the garbage collector found to
  ``CommSender.close_later`` instead of closing it there: a finalizer can run
  inside any lock of any thread, the sender's too.

A comm of another kernel object (or after uninstall) gets ipykernel's own
behaviour. Uninstalling puts both methods back.
"""

from __future__ import annotations

import contextlib
import typing as t

from .buffers import as_buffer_views
from .comm import request_id_of

if t.TYPE_CHECKING:
    from ..delivery.sender import CommSender


class _Routing:
    """The one routing now installed, and ipykernel's own methods.

    Read without a lock (finalizers read it too). ipykernel's methods stay
    known after uninstall, for a bound method taken while installed.
    """

    installed: IPykernelComms | None = None
    original_publish: t.Any = None
    original_del: t.Any = None


_routing = _Routing()


def _comm_base_class() -> type | None:
    """The comm base class of this ipykernel, or None when it has none."""
    try:
        # Imported here: importing ipykernel.comm loads the kernel's machinery.
        from ipykernel.comm.comm import BaseComm  # noqa: PLC0415
    except ImportError:
        return None
    return t.cast(type, BaseComm)


class IPykernelComms:
    """Routes the comms of ipykernel's own classes through ``sender`` while installed.

    ``kernel`` is the kernel whose comms are routed; one installation per
    process, like the ``comm`` package's hooks.
    """

    def __init__(self, kernel: t.Any, sender: CommSender) -> None:
        self.kernel = kernel
        self.sender = sender
        self._base: type | None = None
        self._replaced: dict[str, t.Any] = {}

    def install(self) -> bool:
        """Stand in for ipykernel's ``publish_msg`` and ``__del__``; False when not possible."""
        base = _comm_base_class()
        if base is None or "publish_msg" not in base.__dict__ or _routing.installed is not None:
            return False
        self._base = base
        # ``__del__`` is inherited from the comm package's class: only what
        # the class itself defines is put back.
        self._replaced = {name: base.__dict__.get(name) for name in ("publish_msg", "__del__")}
        _routing.original_publish = self._replaced["publish_msg"]
        _routing.original_del = getattr(base, "__del__", None)
        _routing.installed = self
        base.publish_msg = _publish_msg  # type: ignore[attr-defined]
        base.__del__ = _finalize  # type: ignore[attr-defined]
        return True

    def uninstall(self) -> None:
        """Put ipykernel's methods back; later messages go out as ipykernel sends them."""
        base = self._base
        if base is None or _routing.installed is not self:
            return
        for name, method in self._replaced.items():
            if method is None:
                with contextlib.suppress(AttributeError):
                    delattr(base, name)
            else:
                setattr(base, name, method)
        _routing.installed = None
        self._base = None

    def routes(self, comm: t.Any) -> bool:
        """Whether ``comm`` belongs to this kernel (a comm without a kernel yet does)."""
        kernel = getattr(comm, "kernel", None)
        return kernel is None or kernel is self.kernel


def _publish_msg(
    self: t.Any,
    msg_type: str,
    data: t.Any = None,
    metadata: t.Any = None,
    buffers: t.Any = None,
    **keys: t.Any,
) -> None:
    """``publish_msg`` of ipykernel's comms while installed: through the sender."""
    routing = _routing.installed
    if routing is None or not routing.routes(self):
        original = _routing.original_publish
        original(self, msg_type, data=data, metadata=metadata, buffers=buffers, **keys)
        return
    kernel = routing.kernel
    if getattr(self, "kernel", None) is None:
        self.kernel = kernel
    views = as_buffer_views(buffers) if buffers else None
    data = {} if data is None else data
    content = {"data": data, "comm_id": self.comm_id, **keys}
    parent = kernel.get_parent()
    header = parent.get("header") if parent else None
    if header:
        _note_reply_route(self, header.get("subshell_id"), data)
    routing.sender.send(self, msg_type, content, metadata or {}, parent, views)


def _note_reply_route(comm: t.Any, subshell_id: str | None, data: t.Any) -> None:
    # ipykernel 7 routes the frontend's reply to the subshell that sent last;
    # ipykernel 6 has no such note.
    lock = getattr(comm, "_reply_subshell_lock", None)
    if lock is None:
        return
    request_id = request_id_of(data)
    with lock:
        comm._reply_subshell_id = subshell_id
        if request_id is not None:
            comm._reply_subshell_ids[request_id] = subshell_id


def _finalize(self: t.Any) -> None:
    """``__del__`` of ipykernel's comms while installed: the sender closes the comm later."""
    # A finalizer must not raise, and must not take a lock: see the module's docstring.
    with contextlib.suppress(Exception):
        routing = _routing.installed
        if getattr(self, "_closed", True):
            return
        if routing is not None and routing.routes(self) and routing.sender.close_later(self):
            return
        if _routing.original_del is not None:
            _routing.original_del(self)
        else:
            self.close(deleting=True)
