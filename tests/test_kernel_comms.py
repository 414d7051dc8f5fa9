"""Comms both ways through a real kernel with the extension loaded."""

from __future__ import annotations

import json
import time
import typing as t

import zmq

from .frontend import Frontend


def _raw_iopub_frames(fe: Frontend, code: str, count: int) -> list[list[bytes]]:
    """Run ``code`` and return the first ``count`` comm messages as raw ZMQ frames.

    The topic frame (``comm-<id>``) is stripped by jupyter_client's parsing, so
    this subscribes to the kernel's IOPub port directly.
    """
    info = fe.km.get_connection_info()
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"comm-")
    sub.connect(f"{info['transport']}://{info['ip']}:{info['iopub_port']}")
    try:
        time.sleep(0.3)  # let the subscription reach the kernel's XPUB socket
        fe.run(code)
        frames: list[list[bytes]] = []
        while len(frames) < count:
            if not sub.poll(10_000):
                raise AssertionError(f"only {len(frames)} of {count} raw comm messages arrived")
            message = sub.recv_multipart()
            if message[0] != b"comm-":  # ipykernel 7 welcomes each new subscription
                frames.append(message)
        return frames
    finally:
        sub.close(linger=0)


def test_kernel_opened_comm_arrives_with_topic_target_data_metadata_buffers(
    ext_kernel: Frontend,
) -> None:
    fe = ext_kernel
    mark = fe.mark()
    execution = fe.execute(
        "import comm\n"
        "c = comm.create_comm(target_name='plot', data={'x': [1, 2]}, metadata={'v': '1'},"
        " buffers=[b'\\x00\\xffraw', bytearray(b'second')])\n"
    )
    comm_id = fe.eval("c.comm_id")
    opened = fe.wait_for("comm_open", comm_id=comm_id, since=mark)[0]
    assert opened["content"] == {
        "comm_id": comm_id,
        "target_name": "plot",
        "target_module": None,
        "data": {"x": [1, 2]},
    }
    assert opened["metadata"] == {"v": "1"}
    assert [bytes(b) for b in opened["buffers"]] == [b"\x00\xffraw", b"second"]
    assert opened["parent_header"]["msg_id"] == execution.msg_id
    assert fe.eval("type(c).__name__, c.kernel is get_ipython().kernel") == ("KernelComm", True)

    mark = fe.mark()
    sent = fe.execute("c.send({'y': 3}, metadata={'m': 1}, buffers=[memoryview(b'abc')])")
    msg = fe.wait_for("comm_msg", comm_id=comm_id, since=mark)[0]
    assert msg["content"] == {"comm_id": comm_id, "data": {"y": 3}}
    assert msg["metadata"] == {"m": 1}
    assert [bytes(b) for b in msg["buffers"]] == [b"abc"]
    assert msg["parent_header"]["msg_id"] == sent.msg_id

    mark = fe.mark()
    closed = fe.execute("c.close({'bye': True}); c.close(); c.close({'again': 1})")
    closes = fe.wait_for("comm_close", comm_id=comm_id, since=mark)
    fe.run("c.send({'after': 'close'})")
    assert len(fe.iopub("comm_close", comm_id=comm_id)) == 1, "close is sent once"
    assert closes[0]["content"] == {"comm_id": comm_id, "data": {"bye": True}}
    assert closes[0]["parent_header"]["msg_id"] == closed.msg_id
    assert not fe.eval("c.comm_id in comm.get_comm_manager().comms")


def test_iopub_topic_is_comm_id(ext_kernel: Frontend) -> None:
    frames = _raw_iopub_frames(
        ext_kernel,
        "import comm; t1 = comm.create_comm(target_name='t'); t1.send({'n': 1})",
        2,
    )
    comm_id = ext_kernel.eval("t1.comm_id")
    assert [f[0] for f in frames] == [f"comm-{comm_id}".encode()] * 2


def test_frontend_opened_comm_reaches_target_and_talks_both_ways(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    fe.run(
        "import comm\n"
        "seen = []\n"
        "closed = []\n"
        "def target(c, msg):\n"
        "    seen.append((type(c).__name__, c.primary, msg['content']['data'],"
        " [bytes(b) for b in msg['buffers']]))\n"
        "    c.on_msg(lambda m: c.send({'echo': m['content']['data']}, buffers=m['buffers']))\n"
        "    c.on_close(lambda m: closed.append(m['content']['data']))\n"
        "comm.get_comm_manager().register_target('echo', target)\n"
    )
    comm_id = fe.open_comm("echo", data={"hello": 1}, buffers=[b"open-buffer"])
    assert fe.eval("seen") == [("KernelComm", False, {"hello": 1}, [b"open-buffer"])]
    assert fe.eval(f"{comm_id!r} in comm.get_comm_manager().comms")

    mark = fe.mark()
    msg_id = fe.send_comm(comm_id, {"ping": 2}, buffers=[b"\x01\x02", b""])
    echo = fe.wait_for("comm_msg", comm_id=comm_id, since=mark)[0]
    assert echo["content"]["data"] == {"echo": {"ping": 2}}
    assert [bytes(b) for b in echo["buffers"]] == [b"\x01\x02", b""]
    assert echo["parent_header"]["msg_id"] == msg_id, "replies carry the request as parent"

    fe.close_comm(comm_id, {"reason": "done"})
    assert fe.eval("closed") == [{"reason": "done"}]
    assert not fe.eval(f"{comm_id!r} in comm.get_comm_manager().comms")
    assert fe.iopub("comm_close", comm_id=comm_id) == [], "a frontend close is not echoed"


def test_unknown_target_is_closed_back(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    mark = fe.mark()
    comm_id = fe.open_comm("no.such.target")
    closes = fe.wait_for("comm_close", comm_id=comm_id, since=mark)
    assert len(closes) == 1
    assert fe.eval("len(get_ipython().kernel.comm_manager.comms)") == 0
    assert "No such comm target registered: no.such.target" in fe.kernel_log()


def test_failing_target_is_closed_back(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    fe.run(
        "def bad_target(c, msg):\n"
        "    raise RuntimeError('target exploded')\n"
        "get_ipython().kernel.comm_manager.register_target('bad', bad_target)\n"
    )
    mark = fe.mark()
    comm_id = fe.open_comm("bad")
    assert len(fe.wait_for("comm_close", comm_id=comm_id, since=mark)) == 1
    assert fe.eval("len(get_ipython().kernel.comm_manager.comms)") == 0
    assert "target exploded" in fe.kernel_log()


def test_send_on_closed_comm_is_dropped_and_logged_once(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    fe.run("import comm\nc = comm.create_comm(target_name='t')")
    comm_id = fe.eval("c.comm_id")
    fe.close_comm(comm_id)  # the frontend closes first; the library keeps sending
    mark = fe.mark()
    fe.run("for i in range(3): c.send({'i': i})")
    fe.run("c.close()")
    assert fe.iopub("comm_msg", comm_id=comm_id, since=mark) == []
    assert fe.iopub("comm_close", comm_id=comm_id, since=mark) == []
    assert fe.kernel_log().count(f"Comm {comm_id} (target 't') is closed") == 1
    assert fe.eval("c.stats().dropped_after_close") == 3


def test_deprecated_ipykernel_comm_still_works(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    fe.run(
        "import warnings\n"
        "from ipykernel.comm import Comm\n"
        "received = []\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore', DeprecationWarning)\n"
        "    old = Comm(target_name='legacy', data={'a': 1})\n"
        "old.on_msg(lambda m: received.append(m['content']['data']))\n"
    )
    comm_id = fe.eval("old.comm_id")
    assert fe.eval("old.comm_id in get_ipython().kernel.comm_manager.comms")
    assert fe.iopub("comm_open", comm_id=comm_id)[0]["content"]["target_name"] == "legacy"
    fe.send_comm(comm_id, {"b": 2})
    assert fe.eval("received") == [{"b": 2}]
    mark = fe.mark()
    fe.run("old.close()")
    assert len(fe.wait_for("comm_close", comm_id=comm_id, since=mark)) == 1
    assert not fe.eval("old.comm_id in get_ipython().kernel.comm_manager.comms")


def test_comm_info_lists_our_comms_with_and_without_target_filter(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    fe.run(
        "import comm\n"
        "a = comm.create_comm(target_name='alpha')\n"
        "b = comm.create_comm(target_name='beta')\n"
        "get_ipython().kernel.comm_manager.register_target('beta', lambda c, m: None)\n"
    )
    a_id, b_id = fe.eval("a.comm_id"), fe.eval("b.comm_id")
    frontend_beta = fe.open_comm("beta")
    assert fe.comm_info() == {
        a_id: {"target_name": "alpha"},
        b_id: {"target_name": "beta"},
        frontend_beta: {"target_name": "beta"},
    }
    assert fe.comm_info("beta") == {
        b_id: {"target_name": "beta"},
        frontend_beta: {"target_name": "beta"},
    }
    assert fe.comm_info("gamma") == {}
    fe.run("a.close()")
    assert a_id not in fe.comm_info()


def test_comm_stats_count_both_directions(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    fe.run(
        "import comm\n"
        "holder = {}\n"
        "def target(c, msg):\n"
        "    holder['c'] = c\n"
        "    c.send({'hi': 1}, buffers=[b'12345'])\n"
        "comm.get_comm_manager().register_target('count', target)\n"
    )
    comm_id = fe.open_comm("count", buffers=[b"abc"])
    fe.send_comm(comm_id, {"x": 1}, buffers=[b"0123456789"])
    fe.send_comm(comm_id, {"x": 2})
    stats: dict[str, t.Any] = json.loads(
        fe.run("import json; print(json.dumps(holder['c'].stats().as_dict()))")
    )
    assert stats["comm_id"] == comm_id
    assert stats["opened_by"] == "frontend"
    assert (stats["messages_in"], stats["buffer_bytes_in"]) == (3, 13)
    assert (stats["messages_out"], stats["buffer_bytes_out"]) == (1, 5)
    assert stats["opened_at"] <= stats["last_activity"]
