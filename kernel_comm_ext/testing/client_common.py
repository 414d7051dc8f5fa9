"""What every frontend client of the tests and benchmarks shares.

Three clients talk to real kernels: ``tests/frontend.py`` (jupyter_client,
ZMQ), ``server_client`` beside this module (a Jupyter Server's websocket) and
``benchmarks/frontend.py`` (a raw SUB socket that only timestamps frames).
They differ in how messages arrive; what happens once they have arrived is
here: the log a reader thread appends to and tests wait on, the idle status
that ends a request, the output of one execution, the wait for a shell reply,
and the empty Jupyter and IPython directories kernels start with.

Importable without pytest (the benchmarks run as plain scripts).
"""

from __future__ import annotations

import queue
import threading
import time
import typing as t
from pathlib import Path

Message = dict[str, t.Any]
M = t.TypeVar("M")


class MessageLog(t.Generic[M]):
    """Every message a reader thread received, in order; other threads wait on it."""

    def __init__(self) -> None:
        self._messages: list[M] = []
        self._cond = threading.Condition()
        self._closed = False

    def append(self, message: M) -> None:
        """Record one message (the reader thread) and wake the waiters."""
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()

    def close(self) -> None:
        """Nothing more will arrive (the connection is gone): waiters stop waiting."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._closed

    def mark(self) -> int:
        """A position in the log: pass it as ``since`` to look only at later messages."""
        with self._cond:
            return len(self._messages)

    def since(self, mark: int = 0) -> list[M]:
        """The messages received after ``mark``."""
        with self._cond:
            return self._messages[mark:]

    def wait_for(
        self,
        predicate: t.Callable[[M], bool],
        since: int = 0,
        count: int = 1,
        timeout: float = 30.0,
    ) -> list[M]:
        """Wait for ``count`` messages after ``since`` that match; fewer on timeout or close.

        Each message is looked at once, outside the lock, so that floods of
        tens of thousands of messages stay cheap and the reader is not held up.
        """
        deadline = time.monotonic() + timeout
        found: list[M] = []
        scanned = since
        while True:
            with self._cond:
                batch = self._messages[scanned:]
                if not batch:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._closed:
                        return found
                    self._cond.wait(min(remaining, 0.2))
                    continue
            scanned += len(batch)
            found += [m for m in batch if predicate(m)]
            if len(found) >= count:
                return found

    def wait_quiet(self, quiet: float, timeout: float) -> int | None:
        """Wait until nothing arrived for ``quiet`` seconds; the count then, None on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            count, last_change = len(self._messages), time.monotonic()
            while time.monotonic() - last_change < quiet:
                if time.monotonic() > deadline:
                    return None
                self._cond.wait(0.1)
                if len(self._messages) != count:
                    count, last_change = len(self._messages), time.monotonic()
            return count

    def forget(self) -> None:
        """Drop everything received so far (marks taken before are void)."""
        with self._cond:
            self._messages.clear()


def is_idle_of(msg: Message, msg_id: str) -> bool:
    """Whether ``msg`` is the idle status ending request ``msg_id``."""
    return bool(
        msg["msg_type"] == "status"
        and msg["content"].get("execution_state") == "idle"
        and msg["parent_header"].get("msg_id") == msg_id
    )


class ExecutionOutput:
    """What an execution got: its reply (``self.reply``) and IOPub messages (``self.iopub``)."""

    reply: Message
    iopub: list[Message]

    @property
    def status(self) -> str:
        """The reply's status: ``ok``, ``error`` or ``aborted``."""
        return str(self.reply["content"]["status"])

    @property
    def stdout(self) -> str:
        """Everything the code printed to stdout."""
        return self._stream("stdout")

    @property
    def stderr(self) -> str:
        """Everything the code printed to stderr."""
        return self._stream("stderr")

    @property
    def errors(self) -> list[Message]:
        """The content of each error message (an exception the code raised)."""
        return [m["content"] for m in self.iopub if m["msg_type"] == "error"]

    def _stream(self, name: str) -> str:
        return "".join(
            m["content"]["text"]
            for m in self.iopub
            if m["msg_type"] == "stream" and m["content"]["name"] == name
        )


def wait_shell_reply(client: t.Any, msg_id: str, timeout: float) -> Message | None:
    """The reply to ``msg_id`` on a jupyter_client's shell channel; None after ``timeout`` s.

    Replies to other requests that come first are skipped.
    """
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            reply = client.get_shell_msg(timeout=remaining)
        except queue.Empty:
            continue
        if reply["parent_header"].get("msg_id") == msg_id:
            return t.cast(Message, reply)


JUPYTER_DIRS = {
    "JUPYTER_CONFIG_DIR": "config",
    "JUPYTER_DATA_DIR": "data",
    "JUPYTER_RUNTIME_DIR": "runtime",
    "IPYTHONDIR": "ipython",
}


def isolated_dirs_env(root: Path) -> dict[str, str]:
    """Make empty Jupyter and IPython directories under ``root``; the variables naming them."""
    env = {}
    for name, sub in JUPYTER_DIRS.items():
        (root / sub).mkdir(exist_ok=True)
        env[name] = str(root / sub)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    return env
