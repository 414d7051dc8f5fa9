"""A small Jupyter frontend for tests: a real kernel, spoken to over ZMQ.

``Frontend`` wraps a jupyter_client kernel manager and client. A background
thread records every IOPub message, so a test reads as a transcript: execute
code, open a comm, send on it, wait for what comes back.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import os
import queue
import threading
import typing as t
import uuid
from pathlib import Path

from jupyter_client.manager import KernelManager

from kernel_comm_ext.testing.client_common import (
    ExecutionOutput,
    Message,
    MessageLog,
    is_idle_of,
    wait_shell_reply,
)

DEFAULT_TIMEOUT = 30.0


class KernelError(AssertionError):
    """Code run in the kernel raised, or the kernel did not answer."""


@dataclasses.dataclass
class Execution(ExecutionOutput):
    """What one execute_request produced (its output: ``ExecutionOutput``)."""

    msg_id: str
    reply: dict[str, t.Any]
    iopub: list[dict[str, t.Any]]


class Frontend:
    """A test frontend talking to one real kernel."""

    def __init__(self, km: KernelManager, log_path: Path) -> None:
        self.km = km
        self.kc = km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.log_path = log_path
        self.session = self.kc.session
        self._iopub: MessageLog[Message] = MessageLog()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_iopub, name="test-iopub", daemon=True)
        self._reader.start()
        # Make sure the reader is subscribed and the kernel idle before tests begin.
        self.execute("pass")

    # IOPub log

    def _read_iopub(self) -> None:
        try:
            self._read_iopub_until_stopped()
        finally:
            close_jupyter_client_loop()

    def _read_iopub_until_stopped(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                continue
            except Exception:
                if self._stop.is_set():
                    return
                raise
            self._iopub.append(msg)

    def mark(self) -> int:
        """A position in the IOPub log; pass it as ``since`` to look only at later messages."""
        return self._iopub.mark()

    def iopub(
        self,
        msg_type: str | None = None,
        comm_id: str | None = None,
        parent_id: str | None = None,
        since: int = 0,
    ) -> list[dict[str, t.Any]]:
        """IOPub messages recorded so far that match."""
        return [m for m in self._iopub.since(since) if _matches(m, msg_type, comm_id, parent_id)]

    def wait_for(
        self,
        msg_type: str | None = None,
        comm_id: str | None = None,
        parent_id: str | None = None,
        since: int = 0,
        predicate: t.Callable[[dict[str, t.Any]], bool] | None = None,
        count: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[dict[str, t.Any]]:
        """Wait for ``count`` matching IOPub messages after ``since``; return them."""
        found = self._iopub.wait_for(
            lambda m: (
                _matches(m, msg_type, comm_id, parent_id) and (predicate is None or predicate(m))
            ),
            since=since,
            count=count,
            timeout=timeout,
        )
        if len(found) < count:
            raise KernelError(
                f"timed out waiting for {count} x {msg_type} (comm {comm_id},"
                f" parent {parent_id}); got {len(found)}.\n{self.kernel_log()[-3000:]}"
            )
        return found

    def wait_idle(self, parent_id: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait for the idle status that ends the handling of request ``parent_id``."""
        self.wait_for(predicate=lambda m: is_idle_of(m, parent_id), timeout=timeout)

    # shell requests

    def execute(
        self, code: str, timeout: float = DEFAULT_TIMEOUT, allow_error: bool = False
    ) -> Execution:
        """Run code; wait for its reply and idle status. Raises KernelError on error by default."""
        # An expected error must not abort the requests sent after it (ipykernel 6 does,
        # for those arriving while it handles the error, unless told not to).
        msg_id = self.kc.execute(code, store_history=False, stop_on_error=not allow_error)
        reply = self._shell_reply(msg_id, timeout)
        self.wait_idle(msg_id, timeout)
        execution = Execution(msg_id, reply, self.iopub(parent_id=msg_id))
        if execution.status != "ok" and not allow_error:
            content = reply["content"]
            raise KernelError(
                f"code failed: {content.get('ename')}: {content.get('evalue')}\n"
                + "\n".join(content.get("traceback", []))
                + f"\n--- code ---\n{code}"
            )
        return execution

    def run_until_reply(self, code: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Run code that must succeed, waiting for its execute_reply only; return its msg_id.

        For floods on ipykernel's own comm layer, whose IOPub socket may drop the
        cell's idle status (the shell channel drops nothing).
        """
        msg_id = self.kc.execute(code, store_history=False)
        status = self._shell_reply(msg_id, timeout)["content"]["status"]
        if status != "ok":
            raise KernelError(f"code failed ({status}):\n{code}")
        return str(msg_id)

    def run(self, code: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Run code that must succeed; return its stdout."""
        return self.execute(code, timeout=timeout).stdout

    def eval(self, expression: str, timeout: float = DEFAULT_TIMEOUT) -> t.Any:
        """Evaluate a Python expression in the kernel; its repr must be a Python literal."""
        msg_id = self.kc.execute("", store_history=False, user_expressions={"x": expression})
        reply = self._shell_reply(msg_id, timeout)
        self.wait_idle(msg_id, timeout)
        result = reply["content"]["user_expressions"]["x"]
        if result["status"] != "ok":
            raise KernelError(f"{expression!r} failed: {result['ename']}: {result['evalue']}")
        return ast.literal_eval(result["data"]["text/plain"])

    def comm_info(self, target_name: str | None = None) -> dict[str, t.Any]:
        """The kernel's answer to comm_info_request."""
        content = {} if target_name is None else {"target_name": target_name}
        msg = self.session.msg("comm_info_request", content)
        self.kc.shell_channel.send(msg)
        reply = self._shell_reply(msg["header"]["msg_id"], DEFAULT_TIMEOUT)
        assert reply["content"]["status"] == "ok", reply
        return t.cast(dict[str, t.Any], reply["content"]["comms"])

    def kernel_info(self, timeout: float = 10.0) -> dict[str, t.Any]:
        """The kernel's kernel_info_reply content (proves it still answers)."""
        msg_id = self.kc.kernel_info()
        return t.cast(dict[str, t.Any], self._shell_reply(msg_id, timeout)["content"])

    def _shell_reply(self, msg_id: str, timeout: float) -> dict[str, t.Any]:
        reply = wait_shell_reply(self.kc, msg_id, timeout)
        if reply is None:
            raise KernelError(f"no shell reply to {msg_id}\n{self.kernel_log()[-3000:]}")
        return reply

    # the comm protocol, frontend side

    def send_shell(
        self,
        msg_type: str,
        content: t.Any,
        metadata: t.Any = None,
        buffers: list[bytes] | None = None,
        wait: bool = True,
    ) -> str:
        """Send any shell message (well-formed or not); wait until the kernel is idle after it."""
        msg = self.session.msg(msg_type, content)
        if metadata is not None:
            msg["metadata"] = metadata
        self.session.send(self.kc.shell_channel.socket, msg, buffers=buffers)
        msg_id = str(msg["header"]["msg_id"])
        if wait:
            self.wait_idle(msg_id)
        return msg_id

    def open_comm(
        self,
        target_name: str,
        data: dict[str, t.Any] | None = None,
        comm_id: str | None = None,
        metadata: dict[str, t.Any] | None = None,
        buffers: list[bytes] | None = None,
    ) -> str:
        """Open a comm from the frontend; return its id once the kernel handled it."""
        comm_id = comm_id or uuid.uuid4().hex
        content = {"comm_id": comm_id, "target_name": target_name, "data": data or {}}
        self.send_shell("comm_open", content, metadata=metadata, buffers=buffers)
        return comm_id

    def send_comm(
        self,
        comm_id: str,
        data: dict[str, t.Any] | None = None,
        buffers: list[bytes] | None = None,
        wait: bool = True,
    ) -> str:
        """Send a comm_msg from the frontend."""
        content = {"comm_id": comm_id, "data": data or {}}
        return self.send_shell("comm_msg", content, buffers=buffers, wait=wait)

    def close_comm(self, comm_id: str, data: dict[str, t.Any] | None = None) -> str:
        """Close a comm from the frontend."""
        return self.send_shell("comm_close", {"comm_id": comm_id, "data": data or {}})

    # lifetime

    def kernel_log(self) -> str:
        """What the kernel process wrote to stdout and stderr (its log)."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def shutdown(self) -> None:
        self._stop.set()
        self._reader.join(timeout=5)
        self.kc.stop_channels()
        if self.km.has_kernel:
            self.km.shutdown_kernel(now=True)


def _matches(
    msg: dict[str, t.Any], msg_type: str | None, comm_id: str | None, parent_id: str | None
) -> bool:
    if msg_type is not None and msg["msg_type"] != msg_type:
        return False
    if comm_id is not None and msg["content"].get("comm_id") != comm_id:
        return False
    return parent_id is None or msg["parent_header"].get("msg_id") == parent_id


def start_frontend(log_dir: Path, env: dict[str, str] | None = None) -> Frontend:
    """Start a real ipykernel of this Python and connect a Frontend to it."""
    log_path = log_dir / f"kernel-{uuid.uuid4().hex[:8]}.log"
    km = KernelManager(kernel_name="python3")
    kernel_env = dict(os.environ)
    kernel_env.update(env or {})
    log_file = log_path.open("wb")
    try:
        km.start_kernel(env=kernel_env, stdout=log_file, stderr=log_file)
    finally:
        log_file.close()
    try:
        return Frontend(km, log_path)
    except Exception:
        km.shutdown_kernel(now=True)
        raise


def close_jupyter_client_loop() -> None:
    """Close the event loop jupyter_client's blocking API made for the calling thread.

    jupyter_core keeps it in a context variable and never closes it, which
    leaves a ResourceWarning at exit (an error under our strict filters).
    """
    from jupyter_core import utils

    loop_var = getattr(utils, "_loop", None)
    loop = loop_var.get() if loop_var is not None else None
    if loop is not None and not loop.is_closed():
        loop.close()
