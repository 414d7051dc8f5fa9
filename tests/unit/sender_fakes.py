"""Small fakes for unit tests of the sender: a kernel with a recording socket, a scripted
budget, and a model frontend that applies every message as a widget manager does.

No kernel runs: the sender under test is the real ``CommSender`` with a real
``jupyter_client`` session, so the frames it writes are the frames a kernel
writes, decoded here as a frontend decodes them.
"""

from __future__ import annotations

import itertools
import threading
import typing as t

from jupyter_client.session import Session

from kernel_comm_ext.kernel.comm import KernelComm


class RecordingSocket:
    """Stands in for the IOPub socket: keeps every multipart message sent on it."""

    def __init__(self) -> None:
        self.sent: list[list[bytes]] = []
        self._lock = threading.Lock()

    def send_multipart(self, frames: list[t.Any], copy: bool = True, **_: t.Any) -> None:
        with self._lock:
            self.sent.append([bytes(f) for f in frames])


class FakeKernel:
    """What the sender and KernelComm use of a kernel: session, IOPub socket, parent."""

    def __init__(self) -> None:
        self.session = Session()
        self.iopub_socket = RecordingSocket()

    def get_parent(self, channel: str | None = None) -> dict[str, t.Any]:
        return {}


class ScriptedBudget:
    """A rate budget that allows what a script says: ``take`` and ``owe`` answer in turn.

    ``pattern`` is cycled; True allows. ``owe_pattern`` answers ``owe``.
    """

    def __init__(
        self, pattern: t.Sequence[bool] = (False,), owe_pattern: t.Sequence[bool] = (False,)
    ) -> None:
        self.rate = 1000.0
        self._pattern = list(pattern)
        self._next = 0
        self._owe = itertools.cycle(owe_pattern)
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            allowed = self._pattern[self._next % len(self._pattern)]
            self._next += 1
            return allowed

    def owe(self) -> bool:
        with self._lock:
            return next(self._owe)

    def wait_time(self) -> float:
        """0 when the next ``take`` allows (so a waiting thread tries it), else a millisecond."""
        with self._lock:
            # A take that fails counts as a tick of the clock, so time passes while waiting.
            if self._pattern[self._next % len(self._pattern)]:
                return 0.0
            self._next += 1
            return 0.001


def widget(kernel: FakeKernel, sender: t.Any, module: str | None, model: str | None) -> KernelComm:
    """A kernel comm of a widget model, opened as ipywidgets opens one (None: no model)."""
    comm = KernelComm(kernel=kernel, sender=sender, primary=False, target_name="jupyter.widget")
    state = {} if module is None else {"_model_module": module, "_model_name": model}
    comm.publish_msg(
        "comm_open",
        data={"state": state, "buffer_paths": []},
        target_name="jupyter.widget",
        target_module=None,
    )
    return comm


def update(comm: KernelComm, **state: t.Any) -> None:
    """Send an ipywidgets ``update`` of ``state``."""
    comm.send({"method": "update", "state": state, "buffer_paths": []})


def custom(comm: KernelComm, content: t.Any) -> None:
    """Send a custom message, as ``Widget.send`` does."""
    comm.send({"method": "custom", "content": content})


class ModelFrontend:
    """Applies the messages a socket received in order, recording every change event."""

    def __init__(self, kernel: FakeKernel) -> None:
        self.kernel = kernel
        #: comm id -> the model's current state.
        self.state: dict[str, dict[str, t.Any]] = {}
        #: (comm id, key) -> every value a change event reported, in order.
        self.changes: dict[tuple[str, str], list[t.Any]] = {}
        #: comm id -> (custom content, the state when it arrived).
        self.customs: dict[str, list[tuple[t.Any, dict[str, t.Any]]]] = {}
        self.closed: set[str] = set()
        self.after_close: list[tuple[str, str]] = []
        self.msg_types: list[str] = []
        #: Every message as it arrived: (comm id, msg_type, data).
        self.log: list[tuple[str, str, t.Any]] = []
        self._read = 0

    def messages(self) -> list[dict[str, t.Any]]:
        """Decode what arrived since the last call."""
        session = self.kernel.session
        sent = self.kernel.iopub_socket.sent
        new, self._read = sent[self._read :], len(sent)
        out = []
        for frames in new:
            _idents, rest = session.feed_identities(frames, copy=True)
            out.append(session.deserialize(rest, content=True, copy=True))
        return out

    def apply(self) -> None:
        """Apply every message that arrived since the last call."""
        for msg in self.messages():
            msg_type = msg["header"]["msg_type"]
            self.msg_types.append(msg_type)
            content = msg["content"]
            comm_id = content["comm_id"]
            self.log.append((comm_id, msg_type, content.get("data")))
            if comm_id in self.closed:
                self.after_close.append((comm_id, msg_type))
                continue
            if msg_type == "comm_open":
                self.state[comm_id] = dict(content["data"].get("state", {}))
            elif msg_type == "comm_close":
                self.closed.add(comm_id)
            elif content["data"].get("method") == "update":
                model = self.state.setdefault(comm_id, {})
                for key, value in content["data"]["state"].items():
                    if model.get(key, _UNSEEN) != value:
                        model[key] = value
                        self.changes.setdefault((comm_id, key), []).append(value)
            elif content["data"].get("method") == "custom":
                seen = dict(self.state.get(comm_id, {}))
                self.customs.setdefault(comm_id, []).append((content["data"]["content"], seen))


_UNSEEN = object()
