"""The comm package's and ipykernel's comm tests, ported to our protocol classes.

Sources: ``tests/test_comm.py`` of ipython/comm and of ipython/ipykernel. They
run in-process against the protocol layer (it knows nothing of ipykernel);
the same behaviour is checked end to end in test_kernel_comms.py. Where this package
deliberately differs from the seed, the test says so.
"""

from __future__ import annotations

import typing as t

import comm as comm_hooks
import pytest

from kernel_comm_ext.protocol import BaseComm, CommManager


class RecordingComm(BaseComm):
    """A comm whose publish_msg records instead of sending."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self.published: list[tuple[str, t.Any, dict[str, t.Any]]] = []
        super().__init__(*args, **kwargs)

    def publish_msg(
        self,
        msg_type: str,
        data: t.Any = None,
        metadata: t.Any = None,
        buffers: t.Any = None,
        **keys: t.Any,
    ) -> None:
        self.published.append((msg_type, data, keys))


@pytest.fixture
def manager(monkeypatch: pytest.MonkeyPatch) -> CommManager:
    """Our CommManager installed in the comm package's hooks, as a host would."""
    manager = CommManager()
    monkeypatch.setattr(comm_hooks, "get_comm_manager", lambda: manager)
    monkeypatch.setattr(comm_hooks, "create_comm", RecordingComm)
    return manager


# --- ipython/comm tests/test_comm.py ---


def test_comm_manager() -> None:
    test = CommManager()
    assert test.targets == {}


def test_base_comm(manager: CommManager) -> None:
    test = RecordingComm()
    assert test.target_name == "comm"


# --- ipython/ipykernel tests/test_comm.py ---


def test_comm(manager: CommManager) -> None:
    c = RecordingComm(target_name="bar")
    msgs = []

    def on_close(msg: t.Any) -> None:
        msgs.append(msg)

    def on_message(msg: t.Any) -> None:
        msgs.append(msg)

    c.publish_msg("foo")
    c.open({})
    c.on_msg(on_message)
    c.on_close(on_close)
    c.handle_msg({})
    c.handle_close({})
    c.close()
    assert len(msgs) == 2
    assert c.target_name == "bar"


def test_comm_manager_handlers(manager: CommManager) -> None:
    msgs: list[t.Any] = []

    def foo(comm: t.Any, msg: t.Any) -> None:
        msgs.append(msg)
        comm.close()

    def fizz(comm: t.Any, msg: t.Any) -> None:
        raise RuntimeError("hi")

    def on_close(msg: t.Any) -> None:
        msgs.append(msg)

    def on_msg(msg: t.Any) -> None:
        msgs.append(msg)

    manager.register_target("foo", foo)
    manager.register_target("fizz", fizz)

    comm = RecordingComm()
    comm.on_msg(on_msg)
    comm.on_close(on_close)
    manager.register_comm(comm)
    assert [p[0] for p in comm.published] == ["comm_open"]

    assert manager.get_comm(comm.comm_id) == comm
    assert manager.get_comm("foo") is None

    # This package differs from ipykernel here: ipykernel lets a comm_open carrying
    # the id of an open comm replace that comm; we refuse it and keep the open one.
    msg = {"content": {"comm_id": comm.comm_id, "target_name": "foo"}}
    manager.comm_open(None, None, msg)
    assert msgs == []
    assert manager.get_comm(comm.comm_id) is comm

    # With fresh ids, the seed's cases: the target runs (and closes its comm),
    # an unknown target and a failing target are closed back.
    msg = {"content": {"comm_id": "new-1", "target_name": "foo"}}
    manager.comm_open(None, None, msg)
    assert len(msgs) == 1
    assert manager.get_comm("new-1") is None
    msg = {"content": {"comm_id": "new-2", "target_name": "bar"}}
    manager.comm_open(None, None, msg)
    assert len(msgs) == 1
    assert manager.get_comm("new-2") is None
    msg = {"content": {"comm_id": "new-3", "target_name": "fizz"}}
    manager.comm_open(None, None, msg)
    assert len(msgs) == 1
    assert manager.get_comm("new-3") is None

    manager.register_comm(comm)
    assert manager.get_comm(comm.comm_id) == comm
    msg = {"content": {"comm_id": comm.comm_id}}
    manager.comm_msg(None, None, msg)
    assert len(msgs) == 2
    msg["content"]["comm_id"] = "foo"
    manager.comm_msg(None, None, msg)
    assert len(msgs) == 2

    manager.register_comm(comm)
    assert manager.get_comm(comm.comm_id) == comm
    msg = {"content": {"comm_id": comm.comm_id}}
    manager.comm_close(None, None, msg)
    assert len(msgs) == 3

    assert comm._closed


def test_comm_in_manager(manager: CommManager) -> None:
    comm = RecordingComm()
    assert comm.comm_id in manager.comms


# --- the seed's semantics that the ported tests above rely on, made explicit ---


def test_primary_opens_its_peer_and_secondary_is_open_at_once(manager: CommManager) -> None:
    primary = RecordingComm(target_name="t", data={"a": 1})
    assert primary.published == [
        ("comm_open", {"a": 1}, {"target_name": "t", "target_module": None})
    ]
    assert not primary.closed
    secondary = RecordingComm(target_name="t", primary=False)
    assert secondary.published == []
    assert not secondary.closed
    assert secondary.comm_id not in manager.comms


def test_close_is_sent_once_and_unregisters(manager: CommManager) -> None:
    c = RecordingComm(target_name="t")
    c.close({"x": 1})
    c.close()
    assert [p[0] for p in c.published] == ["comm_open", "comm_close"]
    assert c.comm_id not in manager.comms


def test_open_and_close_data_defaults(manager: CommManager) -> None:
    c = RecordingComm(_open_data={"o": 1}, _close_data={"c": 2})
    c.close()
    assert c.published[0][1] == {"o": 1}
    assert c.published[1][1] == {"c": 2}


def test_register_target_by_import_string(manager: CommManager) -> None:
    manager.register_target("joiner", "os.path.join")
    import os.path

    join: t.Any = os.path.join  # overloaded: not a target's type to mypy
    assert manager.targets["joiner"] is join
    with pytest.raises(ImportError):
        manager.register_target("nope", "os.path.no_such_name")
    assert manager.unregister_target("joiner", join) is join
    assert "joiner" not in manager.targets


def test_unregister_comm_raises_for_unknown(manager: CommManager) -> None:
    c = RecordingComm(primary=False)
    with pytest.raises(KeyError):
        manager.unregister_comm(c)


def test_handle_msg_fires_shell_events(
    manager: CommManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    fired: list[str] = []

    class Events:
        def trigger(self, name: str) -> None:
            fired.append(name)

    class Shell:
        events = Events()

    import IPython

    monkeypatch.setattr(IPython, "get_ipython", Shell)
    c = RecordingComm(primary=False)
    c.on_msg(lambda msg: fired.append("callback"))
    c.handle_msg({"content": {}})
    assert fired == ["pre_execute", "callback", "post_execute"]
