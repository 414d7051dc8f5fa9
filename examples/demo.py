"""Headless demo: a real ipykernel running kernel-comm-ext, spoken to as a frontend does.

Run with ``make demo``. It starts a kernel with jupyter_client, loads the
extension, opens comms from both sides, exchanges messages with binary
buffers, asks for comm_info and prints a short transcript. Then, side by side
through a real ``jupyter server`` (started and stopped here, default IOPub rate
limits), a slider loop and a plotly loop run once on ipykernel's own comm
layer and once on kernel-comm-ext; for each it prints what the page ends on
and how many messages it took. It exits 0, or 1 if any step does not come back
as expected (on kernel-comm-ext, a page that does not end on the kernel's state).
"""

from __future__ import annotations

import ast
import dataclasses
import os
import queue
import sys
import tempfile
import time
import typing as t
import uuid
from pathlib import Path

from jupyter_client.manager import start_new_kernel

from kernel_comm_ext.testing.server_client import ServerKernel, start_jupyter_server
from kernel_comm_ext.testing.widget_frontend import WidgetFrontend

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
        reply = self.shell_reply(msg_id)
        self.check(reply["content"]["status"] == "ok", f"code failed: {reply['content']}")
        return msgs

    def shell_reply(self, msg_id: str) -> dict[str, t.Any]:
        """The reply to request ``msg_id``; replies to others are skipped.

        On a busy machine ``wait_for_ready`` may have sent more than one
        kernel_info_request, and their late replies are still queued.
        """
        while True:
            reply = self.kc.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                return t.cast(dict[str, t.Any], reply)

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

    def run(self) -> bool:
        """Print the protocol transcript; return whether every step came back as expected."""
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
            reply = self.shell_reply(info_msg["header"]["msg_id"])
            for cid, info in reply["content"]["comms"].items():
                self.say("<-", f"open comm {cid[:8]} target={info['target_name']!r}")
            self.check(comm_id in reply["content"]["comms"], "comm_info lacks the frontend comm")

            print("\n5. the frontend closes its comm; the kernel closes its own")
            self.iopub_until_idle(self.send_shell("comm_close", {"comm_id": comm_id, "data": {}}))
            self.say("->", f"comm_close comm={comm_id[:8]}")
            for msg in self.comm_messages(self.execute("kernel_side.close()")):
                self.show(msg)
            info_msg = self.kc.session.msg("comm_info_request", {})
            self.kc.shell_channel.send(info_msg)
            left = self.shell_reply(info_msg["header"]["msg_id"])["content"]["comms"]
            self.say("..", f"comms still open: {len(left)}")
            self.check(not left, "comms are still open after closing both")
        finally:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)
        return self.ok


# The side-by-side: the same loops on both comm layers, through a real Jupyter Server.

SLIDERS = 20_000
EDITS = 2_000
SLIDER_SETUP = "import ipywidgets\nslider = ipywidgets.IntSlider(max=10**6)"
SLIDER_LOOP = f"for i in range({SLIDERS}): slider.value = i"
PLOTLY_SETUP = (
    "import plotly.graph_objects as go\nfig = go.FigureWidget(data=[go.Scatter(y=[0, 0, 0])])"
)
PLOTLY_LOOP = f"for i in range({EDITS}): fig.data[0].y = [i, i + 1, i + 2]"
RATE_EXCEEDED = "IOPub message rate exceeded"
QUIET = 2.0  # seconds with nothing arriving that end a loop's traffic


@dataclasses.dataclass
class Outcome:
    """What one loop did on one comm layer, as the page saw it."""

    page: t.Any
    kernel: t.Any
    messages: int
    seconds: float
    rate_exceeded: bool
    note: str = ""


class SideBySide:
    """Slider and plotly loops on both comm layers, each through the same Jupyter Server."""

    def __init__(self) -> None:
        self.ok = True

    def run(self) -> bool:
        print("\n6. side by side through a real jupyter server (default limit: 1,000 msg/s)")
        with tempfile.TemporaryDirectory(prefix="kernel-comm-ext-demo-") as root:
            server = start_jupyter_server(Path(root), env={"KERNEL_COMM_EXT_AUTOLOAD": "0"})
            try:
                default, ours = server.start_kernel(), server.start_kernel()
                try:
                    ours.execute("%load_ext kernel_comm_ext")
                    slider_loop = f"slider.value = i, {SLIDERS:,} times (ipywidgets IntSlider)"
                    self.compare(slider_loop, default, ours, self.slider)
                    plotly_loop = f"fig.data[0].y = [i, i+1, i+2], {EDITS:,} times (plotly)"
                    self.compare(plotly_loop, default, ours, self.plotly)
                finally:
                    default.shutdown()
                    ours.shutdown()
            finally:
                server.stop()
        return self.ok

    def compare(
        self, title: str, default: ServerKernel, ours: ServerKernel, loop: t.Callable[..., Outcome]
    ) -> None:
        print(f"\n  {title}")
        print(f"    {'':24}{'page ends on':20}{'kernel ends on':20}{'messages':>9}{'time':>8}")
        for label, kernel in (("ipykernel's comm layer", default), ("kernel-comm-ext", ours)):
            outcome = loop(kernel)
            print(
                f"    {label:24}{outcome.page!s:20}{outcome.kernel!s:20}{outcome.messages:>9,}"
                f"{outcome.seconds:>6.1f} s"
                + (f"  {outcome.note}" if outcome.note else "")
                + ("  (server: rate exceeded)" if outcome.rate_exceeded else "")
            )
            if kernel is ours and outcome.page != outcome.kernel:
                self.ok = False
                print("    !! the page does not end on the kernel's state")

    def _loop(self, kernel: ServerKernel, setup: str, loop: str) -> tuple[int, float, bool]:
        """Run ``setup`` then ``loop``; return where the loop's messages start, its time, warned."""
        kernel.execute(setup)
        mark = kernel.mark()
        start = time.monotonic()
        # Past the rate limit the server may drop the idle status: wait for the reply instead.
        kernel.reply_to(kernel.send_execute(loop), timeout=180)
        kernel.wait_quiet(QUIET, timeout=180)
        seconds = time.monotonic() - start - QUIET
        warned = any(
            RATE_EXCEEDED in m["content"]["text"]
            for m in kernel.messages("iopub", "stream", since=mark)
        )
        return mark, seconds, warned

    def slider(self, kernel: ServerKernel) -> Outcome:
        mark, seconds, warned = self._loop(kernel, SLIDER_SETUP, SLIDER_LOOP)
        page = WidgetFrontend()
        page.apply_all(kernel.messages())
        model = page.find("IntSliderModel")[-1]
        messages = len(kernel.messages(msg_type="comm_msg", comm_id=model.comm_id, since=mark))
        value = int(kernel.execute("print(slider.value)").stdout)
        return Outcome(model.state["value"], value, messages, seconds, warned)

    def plotly(self, kernel: ServerKernel) -> Outcome:
        mark, seconds, warned = self._loop(kernel, PLOTLY_SETUP, PLOTLY_LOOP)
        page = WidgetFrontend()
        page.apply_all(kernel.messages())
        figure = page.figures()[-1]
        messages = len(kernel.messages(msg_type="comm_msg", comm_id=figure.comm_id, since=mark))
        y = ast.literal_eval(kernel.execute("print(list(fig.data[0].y))").stdout)
        note = f"{len(figure.restyles):,} of {EDITS:,} restyles drawn"
        return Outcome(figure.traces[0]["y"], y, messages, seconds, warned, note)


def main() -> int:
    """The transcript, then the side-by-side; 0 if every step came back as expected."""
    ok = Demo().run()
    ok = SideBySide().run() and ok
    print("\ndemo " + ("finished: every step came back as expected" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
