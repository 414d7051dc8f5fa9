"""The extension's fast path onto IOPub (kernel_comm_ext/iopub/wire.py), end to end.

Comm messages are packed with a cached parent header and handed to the IOPub
thread in batches; a frontend must not be able to tell: every message is
signed and routed as before, and keeps its place among the kernel's other
IOPub output.
"""

from __future__ import annotations

from .frontend import Frontend

OPEN = """
import comm
c = comm.create_comm(target_name="wire", data={})
"""


def _comm_id(kernel: Frontend) -> str:
    return str(kernel.eval("c.comm_id"))


def test_comm_messages_keep_their_place_among_other_output(ext_kernel: Frontend) -> None:
    ext_kernel.run(OPEN)
    comm_id = _comm_id(ext_kernel)
    execution = ext_kernel.execute(
        "import sys, time\n"
        "k = get_ipython().kernel\n"
        "def display(data, raw):  # as any library publishing on IOPub directly\n"
        "    k.session.send(k.iopub_socket, 'display_data', {'data': data, 'metadata': {}},\n"
        "                   parent=k.get_parent())\n"
        # Hold the IOPub thread up, so that everything below is queued behind it.
        "get_ipython().kernel.iopub_thread.schedule(lambda: time.sleep(0.5))\n"
        "for i in range(100):\n"
        "    c.send({'i': i})\n"
        "    display({'text/plain': f'd{i}'}, raw=True)\n"
        "    c.send({'j': i})\n"
        "    if i % 10 == 0:\n"
        "        print(f'p{i}'); sys.stdout.flush()\n"
    )
    seen = []
    for msg in execution.iopub:
        content = msg["content"]
        if msg["msg_type"] == "comm_msg":
            assert content["comm_id"] == comm_id
            ((key, value),) = content["data"].items()
            seen.append(f"{key}{value}")
        elif msg["msg_type"] == "display_data":
            seen.append(content["data"]["text/plain"])
        elif msg["msg_type"] == "stream":
            seen.extend(content["text"].split())
    expected = []
    for i in range(100):
        expected += [f"i{i}", f"d{i}", f"j{i}"] + ([f"p{i}"] if i % 10 == 0 else [])
    assert seen == expected


def test_each_cell_is_the_parent_of_its_messages(ext_kernel: Frontend) -> None:
    ext_kernel.run(OPEN)
    comm_id = _comm_id(ext_kernel)
    for cell in range(3):
        execution = ext_kernel.execute(f"for i in range(50): c.send({{'cell': {cell}, 'i': i}})")
        msgs = [m for m in execution.iopub if m["msg_type"] == "comm_msg"]
        assert [m["content"]["data"] for m in msgs] == [{"cell": cell, "i": i} for i in range(50)]
        assert all(m["content"]["comm_id"] == comm_id for m in msgs)
        # Every message has its own id; the parent is the request that ran the cell.
        assert len({m["header"]["msg_id"] for m in msgs}) == 50


def test_messages_from_a_thread_arrive_in_order(ext_kernel: Frontend) -> None:
    ext_kernel.run(OPEN)
    comm_id = _comm_id(ext_kernel)
    mark = ext_kernel.mark()
    ext_kernel.run(
        "import threading\n"
        "t = threading.Thread(target=lambda: [c.send({'t': i}) for i in range(300)])\n"
        "t.start(); [c.send({'m': i}) for i in range(300)]; t.join()"
    )
    msgs = ext_kernel.wait_for("comm_msg", comm_id=comm_id, since=mark, count=600)
    by_thread: dict[str, list[int]] = {"t": [], "m": []}
    for msg in msgs:
        ((key, value),) = msg["content"]["data"].items()
        by_thread[key].append(value)
    assert by_thread == {"t": list(range(300)), "m": list(range(300))}


def test_buffers_small_and_large_arrive_intact(ext_kernel: Frontend) -> None:
    ext_kernel.run(OPEN)
    comm_id = _comm_id(ext_kernel)
    execution = ext_kernel.execute(
        "import numpy as np\n"
        "big = np.arange(300_000, dtype='uint8')\n"
        "c.send({'n': 1}, buffers=[b'small', big, memoryview(bytearray(b'x' * 70_000))])\n"
    )
    (msg,) = [m for m in execution.iopub if m["msg_type"] == "comm_msg"]
    assert msg["content"]["comm_id"] == comm_id
    small, big, third = (bytes(b) for b in msg["buffers"])
    assert small == b"small"
    assert big == bytes(i % 256 for i in range(300_000))
    assert third == b"x" * 70_000


def test_session_default_metadata_is_merged(ext_kernel: Frontend) -> None:
    ext_kernel.run(OPEN)
    execution = ext_kernel.execute(
        "get_ipython().kernel.session.metadata = {'site': 'lab'}\n"
        "c.send({'a': 1}, metadata={'own': True})\n"
        "get_ipython().kernel.session.metadata = {}\n"
        "c.send({'a': 2})\n"
    )
    msgs = [m for m in execution.iopub if m["msg_type"] == "comm_msg"]
    assert [m["metadata"] for m in msgs] == [{"site": "lab", "own": True}, {}]


def test_same_wire_messages_as_the_default_layer(kernel: Frontend) -> None:
    """The same cell gives the same messages (but ids and dates) with and without the extension."""
    cell = "c.send({'x': [1, 2.5, 'three', None]}, metadata={'m': 1}); c.close({'bye': 1})"

    def transcript() -> list[tuple[str, dict[str, object], dict[str, object]]]:
        kernel.run(OPEN)
        execution = kernel.execute(cell)
        return [
            (m["msg_type"], {**m["content"], "comm_id": "-"}, m["metadata"])
            for m in execution.iopub
            if m["msg_type"].startswith("comm_")
        ]

    default = transcript()
    kernel.run("%load_ext kernel_comm_ext")
    assert transcript() == default
