"""Voila for browser tests: ``voila`` serving a folder of notebooks as dashboards on 127.0.0.1.

``VoilaServer`` sets up its directories and the auto-enabling kernelspec as
``LabServer`` does, and connects test frontends to the kernel Voila started for
a page through the connection file that kernel wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from jupyter_client.manager import KernelManager

from ..frontend import Frontend
from .lab import START_TIMEOUT, LabServer


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (Voila takes no port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class VoilaServer(LabServer):
    """``voila <folder>`` on 127.0.0.1, each notebook of the folder a dashboard."""

    module = "voila"
    name = "voila"

    def start(self) -> None:
        """Start Voila on the root folder and wait until it answers."""
        self.root.mkdir(parents=True)
        for path in self.dirs.values():
            path.mkdir(parents=True)
        self._write_autoload_kernelspec()
        env = dict(os.environ)
        env.update({name: str(path) for name, path in self.dirs.items()})
        env.update(self.extra_env)
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "voila",
            str(self.root),
            "--no-browser",
            f"--port={port}",
            "--Voila.ip=127.0.0.1",
            f"--token={self.token}",
            # Kernels' connection files where the tests find them.
            f"--Voila.connection_dir_root={self.dirs['JUPYTER_RUNTIME_DIR']}",
            *self.extra_args,
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.base
            )
        self.url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"voila exited at start:\n{self.log_tail()}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                urllib.request.urlopen(f"{self.url}?token={self.token}", timeout=5).close()
                return
            time.sleep(0.2)
        raise RuntimeError(f"voila did not start in {START_TIMEOUT} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop Voila (Ctrl-C, as in a terminal: it shuts its kernels down)."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def page_url(self, notebook: str) -> str:
        """The dashboard of ``notebook``."""
        return f"{self.url}voila/render/{notebook}?token={self.token}"

    def connection_files(self) -> set[Path]:
        """Connection files of the kernels Voila has started so far."""
        return set(self.dirs["JUPYTER_RUNTIME_DIR"].glob("voila_*/kernel-*.json"))

    def connect_file(self, connection_file: Path) -> Frontend:
        """A test frontend on the kernel of ``connection_file`` (a second client)."""
        json.loads(connection_file.read_text())  # written in full before the page renders
        km = KernelManager(connection_file=str(connection_file))
        km.load_connection_file()
        return Frontend(km, self.log_path)
