"""A frontend fast enough to benchmark a kernel's IOPub traffic.

``BenchKernel`` starts a real ipykernel with jupyter_client and talks to it as
a frontend does: execute requests and comm messages on the shell channel,
everything the kernel publishes read from IOPub. The IOPub reader is a raw ZMQ
SUB socket with no receive high-water mark, drained by a thread that only
timestamps the frames and keeps them (buffers are counted, not kept); parsing
happens later, outside the timed path. So the frontend is not the bottleneck,
and what the kernel's IOPub socket drops (its XPUB high-water mark is 1000
messages) shows up as missing messages, counted, never as a hang.
"""

from __future__ import annotations

import ast
import json
import os
import threading
import time
import typing as t
from pathlib import Path

import zmq
from jupyter_client.manager import KernelManager

from kernel_comm_ext.testing.client_common import MessageLog, isolated_dirs_env, wait_shell_reply

DELIM = b"<IDS|MSG>"


class BenchError(RuntimeError):
    """The kernel failed a benchmark step or did not answer in time."""


class Arrival:
    """One IOPub message as the frontend received it; parsed on first use."""

    __slots__ = ("_content", "_header", "_parent", "buffer_sizes", "frames", "time")

    def __init__(self, arrived: float, frames: list[bytes], buffer_sizes: list[int]) -> None:
        self.time = arrived
        self.frames = frames  # header, parent header, metadata, content
        self.buffer_sizes = buffer_sizes
        self._header: dict[str, t.Any] | None = None
        self._parent: dict[str, t.Any] | None = None
        self._content: dict[str, t.Any] | None = None

    @property
    def header(self) -> dict[str, t.Any]:
        if self._header is None:
            self._header = json.loads(self.frames[0])
        return self._header

    @property
    def msg_type(self) -> str:
        return str(self.header["msg_type"])

    @property
    def parent_id(self) -> str | None:
        if self._parent is None:
            self._parent = json.loads(self.frames[1])
        return self._parent.get("msg_id")

    @property
    def content(self) -> dict[str, t.Any]:
        if self._content is None:
            self._content = json.loads(self.frames[3])
        return self._content

    @property
    def comm_id(self) -> str | None:
        if not self.msg_type.startswith("comm_"):
            return None
        return self.content.get("comm_id")


class IOPubLog:
    """Every IOPub message received, in order, with its arrival time (``time.time()``)."""

    def __init__(self, socket: zmq.Socket[bytes]) -> None:
        self._socket = socket
        self._arrivals: MessageLog[Arrival] = MessageLog()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="bench-iopub", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        socket, stop, arrivals = self._socket, self._stop, self._arrivals
        while not stop.is_set():
            try:
                parts = socket.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                socket.poll(50)
                continue
            except zmq.ZMQError:
                if stop.is_set():
                    return
                raise
            arrived = time.time()
            start = next(i for i, p in enumerate(parts) if p.bytes == DELIM) + 2
            frames = [p.bytes for p in parts[start : start + 4]]
            buffer_sizes = [len(p) for p in parts[start + 4 :]]
            arrivals.append(Arrival(arrived, frames, buffer_sizes))

    def mark(self) -> int:
        """A position in the log: pass it as ``since`` to look only at later messages."""
        return self._arrivals.mark()

    def since(self, mark: int) -> list[Arrival]:
        """The messages received after ``mark``."""
        return self._arrivals.since(mark)

    def wait(
        self, predicate: t.Callable[[Arrival], bool], since: int, timeout: float
    ) -> Arrival | None:
        """The first message after ``since`` that matches, waiting up to ``timeout`` s."""
        found = self._arrivals.wait_for(predicate, since=since, timeout=timeout)
        return found[0] if found else None

    def quiet(self, seconds: float, timeout: float) -> None:
        """Wait until nothing has arrived for ``seconds`` (at most ``timeout``)."""
        self._arrivals.wait_quiet(seconds, timeout)

    def forget(self) -> None:
        """Drop everything received so far (between repetitions, to keep memory flat)."""
        self._arrivals.forget()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class CellRun(t.NamedTuple):
    """One cell run: its request id, the value of ``result`` (if asked) and whether idle came."""

    msg_id: str
    result: t.Any
    idle: Arrival | None
    mark: int


class BenchKernel:
    """A real ipykernel and a fast frontend for it."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        #: What workloads remember about this kernel between their steps.
        self.state: dict[str, t.Any] = {}
        #: The subshell comm messages are sent to, as JupyterLab 4.6 does (None: main shell).
        self.comm_subshell_id: str | None = None
        self.km = KernelManager(kernel_name="python3")
        with log_path.open("wb") as log_file:
            self.km.start_kernel(stdout=log_file, stderr=log_file)
        try:
            self.kc = self.km.blocking_client()
            self.kc.start_channels(iopub=False, stdin=False, hb=False, control=False)
            self.session = self.kc.session
            self._context = zmq.Context()
            sub = self._context.socket(zmq.SUB)
            sub.rcvhwm = 0  # never drop here: whatever is lost was lost in the kernel
            sub.linger = 0
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            info = self.km.get_connection_info()
            sub.connect(f"{info['transport']}://{info['ip']}:{info['iopub_port']}")
            self.iopub = IOPubLog(sub)
            self._sub = sub
            self._wait_ready()
        except BaseException:
            self.shutdown()
            raise

    def use_comm_subshell(self) -> None:
        """Ask for a subshell (control channel) and send comm messages there from now on."""
        client = self.km.blocking_client()
        client.start_channels(shell=False, iopub=False, stdin=False, hb=False, control=True)
        try:
            request = self.session.msg("create_subshell_request", {})
            client.control_channel.send(request)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                reply = client.get_control_msg(timeout=30)
                if reply["parent_header"].get("msg_id") == request["header"]["msg_id"]:
                    if reply["content"].get("status") != "ok":
                        raise BenchError(f"{self.name}: no subshell: {reply['content']}")
                    self.comm_subshell_id = str(reply["content"]["subshell_id"])
                    return
            raise BenchError(f"{self.name}: no reply to create_subshell_request")
        finally:
            client.stop_channels()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg_id = self.kc.execute("pass", store_history=False)
            try:
                self._shell_reply(msg_id, timeout=10)
            except BenchError:
                continue
            if self.wait_idle(msg_id, since=0, timeout=1.0) is not None:
                return
        raise BenchError(f"kernel {self.name} never became ready\n{self.kernel_log()}")

    # shell requests

    def execute(self, code: str, result: str | None = None, timeout: float = 300) -> CellRun:
        """Run a cell; wait for its reply and idle status; return ``json.dumps(result)`` loaded.

        The idle status travels on IOPub behind everything the cell published;
        if the kernel's IOPub socket dropped it, this waits until IOPub is quiet.
        """
        mark = self.iopub.mark()
        expressions = {"r": f"__import__('json').dumps({result})"} if result else {}
        msg_id = self.kc.execute(code, store_history=False, user_expressions=expressions)
        reply = self._shell_reply(msg_id, timeout)
        content = reply["content"]
        if content["status"] != "ok":
            raise BenchError(
                f"{self.name}: cell failed: {content.get('ename')}: {content.get('evalue')}\n"
                + "\n".join(content.get("traceback", []))
                + f"\n--- cell ---\n{code}"
            )
        value = None
        if result:
            expr = content["user_expressions"]["r"]
            if expr["status"] != "ok":
                raise BenchError(f"{self.name}: {result!r}: {expr['ename']}: {expr['evalue']}")
            value = json.loads(ast.literal_eval(expr["data"]["text/plain"]))
        idle = self.wait_idle(msg_id, since=mark, timeout=timeout)
        if idle is None:
            self.iopub.quiet(1.0, timeout=timeout)
        return CellRun(msg_id, value, idle, mark)

    def wait_idle(self, msg_id: str, since: int, timeout: float) -> Arrival | None:
        """The idle status that ends request ``msg_id``, or None after ``timeout`` s."""
        return self.iopub.wait(
            lambda a: (
                a.msg_type == "status"
                and a.parent_id == msg_id
                and a.content.get("execution_state") == "idle"
            ),
            since=since,
            timeout=timeout,
        )

    def send_shell(
        self, msg_type: str, content: dict[str, t.Any], buffers: list[bytes] | None = None
    ) -> str:
        """Send a shell message without waiting; return its id."""
        msg = self.session.msg(msg_type, content)
        if self.comm_subshell_id is not None and msg_type.startswith("comm_"):
            msg["header"]["subshell_id"] = self.comm_subshell_id
        self.session.send(self.kc.shell_channel.socket, msg, buffers=buffers)
        return str(msg["header"]["msg_id"])

    def _shell_reply(self, msg_id: str, timeout: float) -> dict[str, t.Any]:
        reply = wait_shell_reply(self.kc, msg_id, timeout)
        if reply is None:
            raise BenchError(f"{self.name}: no reply to {msg_id}\n{self.kernel_log()}")
        return reply

    # lifetime

    def kernel_log(self) -> str:
        """The last lines the kernel process wrote."""
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def shutdown(self) -> None:
        """Stop the reader, the channels and the kernel."""
        iopub = getattr(self, "iopub", None)
        if iopub is not None:
            iopub.stop()
        sub = getattr(self, "_sub", None)
        if sub is not None:
            sub.close()
        kc = getattr(self, "kc", None)
        if kc is not None:
            kc.stop_channels()
        if self.km.has_kernel:
            self.km.shutdown_kernel(now=True)
        context = getattr(self, "_context", None)
        if context is not None:
            context.term()


def isolate_jupyter_dirs(root: Path) -> None:
    """Point this process and the kernels it starts at empty Jupyter and IPython dirs.

    Kernels start on ipykernel's own comm layer (the extension's auto-enable is
    switched off); a variant loads the extension itself.
    """
    os.environ.update(isolated_dirs_env(root))
    os.environ["KERNEL_COMM_EXT_AUTOLOAD"] = "0"
