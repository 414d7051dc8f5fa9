"""Headless demo: a real ipykernel running kernel-comm-ext, spoken to as a frontend does.

Run with ``make demo``. It starts a kernel with jupyter_client, loads the
extension, opens comms from both sides, exchanges messages with binary
buffers, asks for comm_info, prints a short transcript and exits 0 (1 if any
step does not come back as expected).
"""

from __future__ import annotations

import os
import queue
import sys
import time
import typing as t
import uuid

from jupyter_client.manager import start_new_kernel

KERNEL_SETUP = """
%load_ext kernel_comm_ext
import comm
manager = comm.get_comm_manager()

def echo_target(c, msg):
    def echo(m):
        data = m["content"]["data"]
        c.send({"echo": data, "sizes": [len(b) for b in m["buffers"]]}, buffers=m["buffers"])
    c.on_msg(echo)
    c.send({"greeting": "target 'demo.echo' opened comm " + c.comm_id[:8]})

manager.register_target("demo.echo", echo_target)
print(type(manager).__module__ + "." + type(manager).__name__)
"""

KERNEL_OPENS = """
import numpy as np
kernel_side = comm.create_comm(
    target_name="demo.stream", data={"rows": 3}, buffers=[np.arange(6, dtype="int32")]
)
kernel_side.send({"chunk": 1}, buffers=[b"\\x00\\x01\\x02\\xff"])
"""


class Demo:
    """The frontend side of the demo, printing each step."""

    def __init__(self) -> None:
        env = {**os.environ, "KERNEL_COMM_EXT_AUTOLOAD": "0"}
        self.km, self.kc = start_new_kernel(kernel_name="python3", env=env)
        self.ok = True

    def say(self, arrow: str, text: str) -> None:
        print(f"  {arrow} {text}")

    def check(self, condition: bool, what: str) -> None:
        if not condition:
            self.ok = False
            print(f"  !! {what}")

    def execute(self, code: str) -> list[dict[str, t.Any]]:
        """Run code; return the IOPub messages it caused (until idle)."""
        msg_id = self.kc.execute(code)
        msgs = self.iopub_until_idle(msg_id)
        reply = self.kc.get_shell_msg(timeout=30)
        self.check(reply["content"]["status"] == "ok", f"code failed: {reply['content']}")
        return msgs

    def iopub_until_idle(self, msg_id: str) -> list[dict[str, t.Any]]:
        msgs = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_iopub_msg(timeout=1)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return msgs
            msgs.append(msg)
        self.check(False, f"no idle status for {msg_id}")
        return msgs

    def send_shell(self, msg_type: str, content: dict[str, t.Any], buffers: t.Any = None) -> str:
        msg = self.kc.session.msg(msg_type, content)
        self.kc.session.send(self.kc.shell_channel.socket, msg, buffers=buffers)
        return str(msg["header"]["msg_id"])

    def comm_messages(self, msgs: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        return [m for m in msgs if m["msg_type"].startswith("comm_")]

    def show(self, msg: dict[str, t.Any]) -> None:
        content = msg["content"]
        buffers = [bytes(b) for b in msg.get("buffers", [])]
        extra = f" buffers={buffers}" if buffers else ""
        target = f" target={content['target_name']!r}" if "target_name" in content else ""
        self.say(
            "<-",
            f"{msg['msg_type']} comm={content['comm_id'][:8]}{target} "
            f"data={content['data']}{extra}",
        )

    def run(self) -> int:
        try:
            self.kc.wait_for_ready(timeout=60)
            print("kernel-comm-ext demo: a real ipykernel, spoken to over ZMQ\n")
            print("1. %load_ext kernel_comm_ext")
            out = self.execute(KERNEL_SETUP)
            manager = "".join(m["content"].get("text", "") for m in out).strip()
            self.say("..", f"comm manager in the kernel: {manager}")
            self.check(manager.endswith("KernelCommManager"), "the extension is not active")

            print("\n2. the kernel opens a comm and sends on it (binary buffers)")
            for msg in self.comm_messages(self.execute(KERNEL_OPENS)):
                self.show(msg)

            print("\n3. the frontend opens a comm to target 'demo.echo' and sends on it")
            comm_id = uuid.uuid4().hex
            open_id = self.send_shell(
                "comm_open", {"comm_id": comm_id, "target_name": "demo.echo", "data": {}}
            )
            self.say("->", f"comm_open comm={comm_id[:8]} target='demo.echo'")
            for msg in self.comm_messages(self.iopub_until_idle(open_id)):
                self.show(msg)
            payload = [b"hello", bytes(range(5))]
            msg_id = self.send_shell(
                "comm_msg", {"comm_id": comm_id, "data": {"text": "ping"}}, buffers=payload
            )
            self.say(
                "->", f"comm_msg  comm={comm_id[:8]} data={{'text': 'ping'}} buffers={payload}"
            )
            echoes = self.comm_messages(self.iopub_until_idle(msg_id))
            for msg in echoes:
                self.show(msg)
            self.check(
                bool(echoes) and [bytes(b) for b in echoes[0]["buffers"]] == payload,
                "the echo did not bring the buffers back byte for byte",
            )

            print("\n4. comm_info_request")
            info_msg = self.kc.session.msg("comm_info_request", {})
            self.kc.shell_channel.send(info_msg)
            reply = self.kc.get_shell_msg(timeout=30)
            for cid, info in reply["content"]["comms"].items():
                self.say("<-", f"open comm {cid[:8]} target={info['target_name']!r}")
            self.check(comm_id in reply["content"]["comms"], "comm_info lacks the frontend comm")

            print("\n5. the frontend closes its comm; the kernel closes its own")
            self.iopub_until_idle(self.send_shell("comm_close", {"comm_id": comm_id, "data": {}}))
            self.say("->", f"comm_close comm={comm_id[:8]}")
            for msg in self.comm_messages(self.execute("kernel_side.close()")):
                self.show(msg)
            self.kc.shell_channel.send(self.kc.session.msg("comm_info_request", {}))
            left = self.kc.get_shell_msg(timeout=30)["content"]["comms"]
            self.say("..", f"comms still open: {len(left)}")
            self.check(not left, "comms are still open after closing both")
        finally:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)
        print("\ndemo " + ("finished: every step came back as expected" if self.ok else "FAILED"))
        return 0 if self.ok else 1


if __name__ == "__main__":
    sys.exit(Demo().run())
