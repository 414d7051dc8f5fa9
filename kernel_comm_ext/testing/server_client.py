"""A real Jupyter Server and a client that talks to its kernels as JupyterLab does.

``start_jupyter_server`` runs ``jupyter server`` on 127.0.0.1 (a free port, a
token, a given root directory with its own runtime directory, the server's
default IOPub rate limits). ``JupyterServer.start_kernel`` starts a kernel
through the REST API and connects to its websocket channels with the
``v1.kernel.websocket.jupyter.org`` protocol; a background thread records every
message, so a caller reads like a notebook frontend: execute code, wait for
what comes back. Used by the tests (``tests/server_client.py`` adds the
fixtures) and ``examples/demo.py``; needs ``websocket-client``
and ``jupyter_server`` (the ``test`` extra).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import typing as t
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import websocket

from .client_common import ExecutionOutput, Message, MessageLog, is_idle_of

DEFAULT_TIMEOUT = 60.0
WS_PROTOCOL = "v1.kernel.websocket.jupyter.org"


class ServerError(AssertionError):
    """The server or one of its kernels did not do what the caller expected."""


# The websocket v1 protocol of Jupyter Server: a little-endian uint64 count of
# offsets, the offsets, then the channel name and the message parts.


def pack_ws_message(channel: str, parts: list[bytes]) -> bytes:
    """Frame ``parts`` (header, parent header, metadata, content, buffers...) for the websocket."""
    chunks = [channel.encode(), *parts]
    offsets = [8 * (1 + len(chunks) + 1)]
    for chunk in chunks:
        offsets.append(offsets[-1] + len(chunk))
    head = [len(offsets).to_bytes(8, "little")] + [o.to_bytes(8, "little") for o in offsets]
    return b"".join(head + chunks)


def unpack_ws_message(frame: bytes) -> tuple[str, list[bytes]]:
    """The channel and message parts of a websocket frame."""
    count = int.from_bytes(frame[:8], "little")
    offsets = [int.from_bytes(frame[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(count)]
    channel = frame[offsets[0] : offsets[1]].decode()
    return channel, [frame[offsets[i] : offsets[i + 1]] for i in range(1, count - 1)]


def _decode(channel: str, parts: list[bytes]) -> Message:
    header, parent, metadata, content = (json.loads(p) for p in parts[:4])
    return {
        "channel": channel,
        "header": header,
        "msg_id": header.get("msg_id"),
        "msg_type": header.get("msg_type"),
        "parent_header": parent,
        "metadata": metadata,
        "content": content,
        "buffers": parts[4:],
    }


@dataclasses.dataclass
class ServerExecution(ExecutionOutput):
    """What one execute_request produced, as the websocket client saw it."""

    msg_id: str
    reply: Message
    iopub: list[Message]


class ServerKernel:
    """A kernel of a Jupyter Server, connected to its websocket channels as JupyterLab is."""

    def __init__(self, server: JupyterServer, kernel_id: str) -> None:
        self.server = server
        self.kernel_id = kernel_id
        self.session_id = uuid.uuid4().hex
        self._messages: MessageLog[Message] = MessageLog()
        self.ws = websocket.create_connection(
            f"{server.ws_url}/api/kernels/{kernel_id}/channels?session_id={self.session_id}",
            header=[f"Authorization: token {server.token}"],
            subprotocols=[WS_PROTOCOL],
            timeout=DEFAULT_TIMEOUT,
        )
        if self.ws.getsubprotocol() != WS_PROTOCOL:
            self.ws.close()
            raise ServerError(f"server did not accept {WS_PROTOCOL}: {self.ws.getsubprotocol()!r}")
        self._reader = threading.Thread(target=self._read, name="test-ws", daemon=True)
        self._reader.start()
        self.kernel_info()

    # receiving

    def _read(self) -> None:
        while True:
            try:
                frame = self.ws.recv()
            except Exception:
                self._messages.close()
                return
            if not isinstance(frame, bytes):
                continue
            self._messages.append(_decode(*unpack_ws_message(frame)))

    def mark(self) -> int:
        """A position in the log of received messages; pass it as ``since``."""
        return self._messages.mark()

    def messages(
        self,
        channel: str | None = "iopub",
        msg_type: str | None = None,
        parent_id: str | None = None,
        comm_id: str | None = None,
        since: int = 0,
    ) -> list[Message]:
        """Messages received so far that match."""
        return [
            m
            for m in self._messages.since(since)
            if _matches(m, channel, msg_type, parent_id, comm_id)
        ]

    def wait_for(
        self,
        predicate: t.Callable[[Message], bool],
        channel: str | None = "iopub",
        since: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Message:
        """Wait for the first message on ``channel`` after ``since`` matching ``predicate``."""
        found = self._messages.wait_for(
            lambda m: (channel is None or m["channel"] == channel) and predicate(m),
            since=since,
            timeout=timeout,
        )
        if not found:
            why = "websocket closed" if self._messages.closed else f"timed out after {timeout} s"
            raise ServerError(f"{why} waiting on {channel}\n{self.server.log()[-3000:]}")
        return found[0]

    def wait_quiet(self, quiet: float = 1.5, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Wait until nothing arrived for ``quiet`` seconds; return how many messages arrived."""
        count = self._messages.wait_quiet(quiet, timeout)
        if count is None:
            raise ServerError(f"still receiving after {timeout} s")
        return count

    def wait_idle(
        self, parent_id: str, since: int = 0, timeout: float = DEFAULT_TIMEOUT
    ) -> Message:
        """Wait for the idle status that ends the handling of request ``parent_id``."""
        return self.wait_for(lambda m: is_idle_of(m, parent_id), since=since, timeout=timeout)

    # sending

    def send(self, channel: str, msg_type: str, content: dict[str, t.Any]) -> str:
        """Send a request on ``channel``; return its msg_id."""
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "username": "test",
            "session": self.session_id,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
            "version": "5.3",
        }
        parts = [json.dumps(part).encode() for part in (header, {}, {}, content)]
        self.ws.send(pack_ws_message(channel, parts), opcode=websocket.ABNF.OPCODE_BINARY)
        return msg_id

    def send_execute(self, code: str) -> str:
        """Send an execute_request without waiting; return its msg_id."""
        content = {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        return self.send("shell", "execute_request", content)

    def reply_to(self, msg_id: str, timeout: float = DEFAULT_TIMEOUT) -> Message:
        """Wait for the shell reply to request ``msg_id``."""
        return self.wait_for(
            lambda m: m["parent_header"].get("msg_id") == msg_id, channel="shell", timeout=timeout
        )

    def execute(
        self, code: str, timeout: float = DEFAULT_TIMEOUT, allow_error: bool = False
    ) -> ServerExecution:
        """Run code; wait for its reply and its idle status. Raises ServerError on error."""
        since = self.mark()
        msg_id = self.send_execute(code)
        reply = self.reply_to(msg_id, timeout)
        self.wait_idle(msg_id, since=since, timeout=timeout)
        execution = ServerExecution(msg_id, reply, self.messages(parent_id=msg_id, since=since))
        if execution.status != "ok" and not allow_error:
            content = reply["content"]
            raise ServerError(
                f"code failed: {content.get('ename')}: {content.get('evalue')}\n"
                + "\n".join(content.get("traceback", []))
                + f"\n--- code ---\n{code}"
            )
        return execution

    def kernel_info(self, timeout: float = DEFAULT_TIMEOUT) -> dict[str, t.Any]:
        """The kernel's kernel_info_reply content."""
        msg_id = self.send("shell", "kernel_info_request", {})
        return t.cast(dict[str, t.Any], self.reply_to(msg_id, timeout)["content"])

    def model(self) -> dict[str, t.Any]:
        """The server's REST model of this kernel (``execution_state`` among others)."""
        return t.cast(
            dict[str, t.Any], self.server.request("GET", f"/api/kernels/{self.kernel_id}")
        )

    def shutdown(self) -> None:
        """Close the websocket and shut the kernel down."""
        with contextlib.suppress(Exception):
            self.ws.close()
        self._reader.join(timeout=5)
        with contextlib.suppress(ServerError):
            self.server.request("DELETE", f"/api/kernels/{self.kernel_id}")


def _matches(
    msg: Message,
    channel: str | None,
    msg_type: str | None,
    parent_id: str | None,
    comm_id: str | None,
) -> bool:
    if channel is not None and msg["channel"] != channel:
        return False
    if msg_type is not None and msg["msg_type"] != msg_type:
        return False
    if parent_id is not None and msg["parent_header"].get("msg_id") != parent_id:
        return False
    return comm_id is None or msg["content"].get("comm_id") == comm_id


class JupyterServer:
    """A ``jupyter server`` process of this Python, reachable on 127.0.0.1."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, token: str, log_path: Path):
        self.process = process
        self.url = url
        self.ws_url = "ws" + url.removeprefix("http")
        self.token = token
        self.log_path = log_path

    def request(self, method: str, path: str, body: t.Any = None) -> t.Any:
        """Call the REST API; return the decoded JSON answer (None when empty)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"token {self.token}")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=DEFAULT_TIMEOUT) as answer:
                text = answer.read()
        except urllib.error.URLError as exc:
            raise ServerError(f"{method} {path} failed: {exc}\n{self.log()[-3000:]}") from exc
        return json.loads(text) if text else None

    def start_kernel(self, name: str = "python3") -> ServerKernel:
        """Start a kernel through the REST API and connect to its channels."""
        kernel_id = self.request("POST", "/api/kernels", {"name": name})["id"]
        try:
            return ServerKernel(self, kernel_id)
        except Exception:
            with contextlib.suppress(ServerError):
                self.request("DELETE", f"/api/kernels/{kernel_id}")
            raise

    def log(self) -> str:
        """What the server (and its kernels) wrote to stdout and stderr."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def stop(self) -> None:
        """Shut the server (and every kernel it runs) down."""
        if self.process.poll() is None:
            with contextlib.suppress(ServerError):
                self.request("POST", "/api/shutdown")
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_jupyter_server(
    root: Path, env: dict[str, str] | None = None, args: t.Sequence[str] = ()
) -> JupyterServer:
    """Start ``jupyter server`` with its default rate limits; return it once it answers.

    ``root`` holds the server's root directory, runtime directory and log.
    ``env`` is added to the environment (the kernels inherit it); ``args``
    are extra command-line options such as ``--ServerApp.iopub_msg_rate_limit=...``.
    """
    notebooks = root / "notebooks"
    runtime = root / "runtime"
    notebooks.mkdir(parents=True, exist_ok=True)
    runtime.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    server_env = dict(os.environ)
    server_env.update({"JUPYTER_RUNTIME_DIR": str(runtime), **(env or {})})
    command = [
        sys.executable,
        "-m",
        "jupyter_server",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",
        "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={notebooks}",
        f"--IdentityProvider.token={token}",
        *args,
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root
    log_path = root / "server.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, env=server_env, stdout=log_file, stderr=log_file)
    try:
        url = _wait_for_url(process, runtime, log_path)
        server = JupyterServer(process, url, token, log_path)
        _wait_for_answer(server, process)
    except BaseException:
        process.kill()
        process.wait(timeout=10)
        raise
    return server


def _wait_for_answer(server: JupyterServer, process: subprocess.Popen[bytes]) -> None:
    """Ask ``/api/status`` until the server answers; fail at once if it exited."""
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while True:
        try:
            server.request("GET", "/api/status")
            return
        except ServerError:
            if process.poll() is not None:
                raise ServerError(
                    f"jupyter server exited ({process.returncode}):\n{server.log()}"
                ) from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _wait_for_url(process: subprocess.Popen[bytes], runtime: Path, log_path: Path) -> str:
    """The server's URL, read from the info file it writes to its runtime directory."""
    info_file = runtime / f"jpserver-{process.pid}.json"
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(
                f"jupyter server exited ({process.returncode}):\n{log_path.read_text()}"
            )
        with contextlib.suppress(OSError, ValueError):
            info = json.loads(info_file.read_text())
            return f"http://127.0.0.1:{info['port']}"
        time.sleep(0.1)
    raise ServerError(f"jupyter server did not start:\n{log_path.read_text()}")
