"""The test client of a real Jupyter Server works: REST, websocket channels, IOPub."""

from __future__ import annotations

from .server_client import ServerKernel


def test_execute_through_the_server(server_kernel: ServerKernel) -> None:
    execution = server_kernel.execute("print(6 * 7)")
    assert execution.status == "ok"
    assert execution.stdout == "42\n"
    statuses = [
        m["content"]["execution_state"] for m in execution.iopub if m["msg_type"] == "status"
    ]
    assert statuses == ["busy", "idle"]
    assert server_kernel.model()["execution_state"] == "idle"


def test_comm_messages_and_buffers_reach_the_websocket(server_kernel: ServerKernel) -> None:
    execution = server_kernel.execute(
        "import comm\n"
        "c = comm.create_comm(target_name='t', data={'hello': 1})\n"
        "c.send({'n': 2}, buffers=[b'abc', memoryview(b'de')])\n"
    )
    opened = [m for m in execution.iopub if m["msg_type"] == "comm_open"]
    sent = [m for m in execution.iopub if m["msg_type"] == "comm_msg"]
    assert opened[0]["content"]["data"] == {"hello": 1}
    assert sent[0]["content"]["data"] == {"n": 2}
    assert sent[0]["buffers"] == [b"abc", b"de"]
    assert sent[0]["content"]["comm_id"] == opened[0]["content"]["comm_id"]
