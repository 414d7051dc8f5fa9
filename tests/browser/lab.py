"""JupyterLab for browser tests: a real server, Debian's chromium, notebooks driven as a user would.

``LabServer`` runs ``jupyter lab`` on 127.0.0.1 with a random port, a token, a
temporary root directory and its own Jupyter and IPython directories, and
connects test frontends (``tests/frontend.py``) to the kernels of its
notebooks through their connection files, to read and set kernel state.
``NotebookPage`` is one notebook open in a browser page: it runs cells with
JupyterLab's own commands and leaves the widgets to be used with the mouse and
keyboard.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import typing as t
import urllib.request
from pathlib import Path

from jupyter_client.manager import KernelManager

from ..frontend import Frontend

if t.TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Locator, Page

# How Debian's chromium is started: headless, and kept off the (closed) network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Server settings: quiet, offline, and the app exposed as window.jupyterapp so
# tests can run notebook commands (as JupyterLab's own Galata tests do).
SERVER_CONFIG = {
    "ServerApp": {
        "allow_root": True,
        "open_browser": False,
        "terminals_enabled": False,
        "jpserver_extensions": {"jupyter_lsp": False, "jupyter_server_terminals": False},
    },
    # Notebook 7 (NotebookServer) reads its own section; JupyterLab ignores it.
    "JupyterNotebookApp": {"expose_app_in_browser": True},
    "LabApp": {
        "expose_app_in_browser": True,
        "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
        "news_url": None,
        "extension_manager": "readonly",
    },
}
PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}

# A kernel that auto-enables kernel-comm-ext (the server's default python3 kernel has it off).
AUTOLOAD_KERNEL = "python3-autoload"

START_TIMEOUT = 60.0
PAGE_TIMEOUT_MS = 60_000


def chromium_executable() -> str:
    """Debian's chromium, or a clear failure saying how to install it."""
    path = shutil.which("chromium")
    if path is None:
        raise RuntimeError(
            "Debian's chromium is not installed; the browser tests use it and never download a"
            " browser. Install it with `make chromium` (apt-get install chromium chromium-driver)."
        )
    return path


class LabServer:
    """A ``jupyter lab`` process on 127.0.0.1 with isolated directories."""

    # The Python module that starts the frontend's server, and its name in messages.
    module = "jupyterlab"
    name = "jupyter lab"

    def __init__(
        self, base: Path, env: dict[str, str] | None = None, args: t.Sequence[str] = ()
    ) -> None:
        self.base = base
        self.root = base / "root"
        self.dirs = {
            "JUPYTER_CONFIG_DIR": base / "config",
            "JUPYTER_DATA_DIR": base / "data",
            "JUPYTER_RUNTIME_DIR": base / "runtime",
            "IPYTHONDIR": base / "ipython",
        }
        self.token = secrets.token_hex(16)
        self.log_path = base / "server.log"
        self.extra_env = env or {}
        self.extra_args = list(args)
        # Where the kernels' connection files are (another process's, behind a gateway).
        self.kernel_runtime_dir = self.dirs["JUPYTER_RUNTIME_DIR"]
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until its REST API answers."""
        self.root.mkdir(parents=True)
        for path in self.dirs.values():
            path.mkdir(parents=True)
        config = self.dirs["JUPYTER_CONFIG_DIR"]
        (config / "jupyter_server_config.json").write_text(json.dumps(SERVER_CONFIG))
        (config / "labconfig").mkdir()
        (config / "labconfig" / "page_config.json").write_text(json.dumps(PAGE_CONFIG))
        self._write_autoload_kernelspec()
        env = dict(os.environ)
        env.update({name: str(path) for name, path in self.dirs.items()})
        env.update(self.extra_env)
        command = [
            sys.executable,
            "-m",
            self.module,
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            *self.extra_args,
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.base
            )
        self.url = self._wait_for_url()

    def write_autoload_kernelspec(self) -> None:
        """Install the auto-enabling kernelspec in this server's data directory."""
        self._write_autoload_kernelspec()

    def _write_autoload_kernelspec(self) -> None:
        spec = self.dirs["JUPYTER_DATA_DIR"] / "kernels" / AUTOLOAD_KERNEL
        spec.mkdir(parents=True)
        kernel = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (kernel-comm-ext auto-enabled)",
            "language": "python",
            "env": {"KERNEL_COMM_EXT_AUTOLOAD": "1"},
        }
        (spec / "kernel.json").write_text(json.dumps(kernel))

    def _wait_for_url(self) -> str:
        # With port 0 the server picks a free port and writes it to its info file.
        assert self.process is not None
        info_file = self.dirs["JUPYTER_RUNTIME_DIR"] / f"jpserver-{self.process.pid}.json"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            with contextlib.suppress(OSError, ValueError):
                url = str(json.loads(info_file.read_text())["url"])
                self.url = url
                self.api("GET", "api/status")
                return url
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start in {START_TIMEOUT} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Shut the server down with its kernels; kill it if it does not exit."""
        if self.process is None:
            return
        with contextlib.suppress(OSError, ValueError):
            self.api("POST", "api/shutdown")
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log (kernels started by the server log here too)."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    # REST API

    def api(self, method: str, path: str, body: t.Any = None) -> t.Any:
        """Call the server's REST API; return the decoded JSON answer (None when empty)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def page_url(self, notebook: str) -> str:
        """The address that opens ``notebook`` in a fresh JupyterLab workspace."""
        return f"{self.url}lab/tree/{notebook}?reset&token={self.token}"

    def kernel_id(self, notebook: str) -> str:
        """The id of the kernel of the session of ``notebook``."""
        for session in self.api("GET", "api/sessions"):
            if session["path"] == notebook:
                return str(session["kernel"]["id"])
        raise AssertionError(f"no session for {notebook}")

    def connect(self, notebook: str) -> Frontend:
        """A test frontend on the kernel the page runs ``notebook`` in (a second client)."""
        kernel_id = self.kernel_id(notebook)
        connection_file = self.kernel_runtime_dir / f"kernel-{kernel_id}.json"
        km = KernelManager(connection_file=str(connection_file))
        km.load_connection_file()
        # km started no kernel, so Frontend.shutdown only closes this client.
        return Frontend(km, self.log_path)

    def end_sessions(self) -> None:
        """Shut down every notebook session and its kernel."""
        for session in self.api("GET", "api/sessions"):
            self.api("DELETE", f"api/sessions/{session['id']}")


class NotebookServer(LabServer):
    """A Notebook 7 (``jupyter notebook``) process, set up as ``LabServer`` sets up JupyterLab."""

    module = "notebook"
    name = "jupyter notebook"

    def page_url(self, notebook: str) -> str:
        """The address that opens ``notebook`` in Notebook 7's single-document page."""
        return f"{self.url}notebooks/{notebook}?token={self.token}"


# JavaScript run in the page: the notebook panel of a path, found in the app shell.
_PANEL = """
    const panelOf = (path) => {
      const app = window.jupyterapp;
      if (!app) return null;
      for (const widget of app.shell.widgets("main")) {
        if (widget.context && widget.context.path === path) return widget;
      }
      return null;
    };
"""


class NotebookPage:
    """One notebook open in JupyterLab in a browser page."""

    def __init__(self, page: Page, server: LabServer, notebook: str) -> None:
        self.page = page
        self.server = server
        self.notebook = notebook
        self._kernel: Frontend | None = None

    @classmethod
    def open(cls, context: BrowserContext, server: LabServer, notebook: str) -> NotebookPage:
        """Open ``notebook`` in a new page and wait until its kernel is idle."""
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        notebook_page = cls(page, server, notebook)
        page.goto(server.page_url(notebook))
        notebook_page.wait_ready()
        # Room for the notebook: fold the file browser away.
        # (Notebook 7's shell has no left area to fold.)
        page.evaluate("() => window.jupyterapp.shell.collapseLeft?.()")
        return notebook_page

    def kernel(self) -> Frontend:
        """A test frontend on this notebook's kernel, to read and set state beside the page."""
        if self._kernel is None:
            self._kernel = self.server.connect(self.notebook)
        return self._kernel

    def close(self) -> None:
        """Close the page and the test frontend (the kernel is the server's to stop)."""
        if self._kernel is not None:
            self._kernel.shutdown()
            self._kernel = None
        self.page.close()

    def _eval(self, body: str, arg: t.Any = None) -> t.Any:
        return self.page.evaluate(
            f"async (arg) => {{ {_PANEL} const panel = panelOf({json.dumps(self.notebook)});"
            f" {body} }}",
            arg,
        )

    def wait_ready(self) -> None:
        """Wait for the notebook to show with a connected, idle kernel."""
        self.page.wait_for_function(
            f"() => {{ {_PANEL} const panel = panelOf({json.dumps(self.notebook)});"
            " const kernel = panel && panel.sessionContext.session"
            " && panel.sessionContext.session.kernel;"
            " return !!kernel && kernel.status === 'idle'"
            " && kernel.connectionStatus === 'connected'; }",
            timeout=PAGE_TIMEOUT_MS,
        )

    def run_all(self) -> None:
        """Run every cell (Run > Run All Cells); return when they have run."""
        ok = self._eval(
            "return await window.jupyterapp.commands.execute('notebook:run-all-cells');"
        )
        assert ok, f"running all cells of {self.notebook} failed"

    def run_cell(self, index: int) -> None:
        """Select cell ``index`` and run it (Shift+Enter without moving on)."""
        ok = self._eval(
            "panel.content.activeCellIndex = arg; panel.content.deselectAll();"
            " window.jupyterapp.shell.activateById(panel.id);"
            " return await window.jupyterapp.commands.execute('notebook:run-cell');",
            index,
        )
        assert ok, f"running cell {index} of {self.notebook} failed"

    def save(self) -> None:
        """Save the notebook (File > Save)."""
        self._eval("await panel.context.save();")

    def reload(self) -> None:
        """Reload the browser page and wait for the notebook to be back."""
        self.page.reload()
        self.wait_ready()

    def cell(self, index: int) -> Locator:
        """The notebook's cell ``index`` in the page."""
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)

    def show_log_console(self) -> Locator:
        """Open JupyterLab's log console (View > Show Log Console); return its panel."""
        self.page.evaluate("async () => window.jupyterapp.commands.execute('logconsole:open')")
        return self.page.locator(".jp-LogConsole")

    def screenshot(self, path: Path, settle: bool = True) -> None:
        """Save a screenshot of the page (by default once the kernel is idle again)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if settle:
            self.wait_ready()
        self.page.screenshot(path=str(path))


def wait_until(
    read: t.Callable[[], t.Any], expected: t.Any, timeout: float = 15.0, what: str = "value"
) -> None:
    """Poll ``read()`` until it returns ``expected``; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    value = read()
    while value != expected:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what}: expected {expected!r}, still {value!r} after {timeout} s"
            )
        time.sleep(0.1)
        value = read()
