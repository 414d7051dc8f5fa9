"""Browser fixtures: one JupyterLab server and one chromium per session, fresh pages per test.

Every test opens copies of notebooks from ``examples/`` in a new browser
context; when it ends, its pages close and the server shuts its kernels down.
A failing test leaves a screenshot of each of its pages in
``test-artifacts/failures/``.
"""

from __future__ import annotations

import contextlib
import os
import typing as t
import urllib.parse
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import expect

from .lab import CHROMIUM_ARGS, LabServer, NotebookPage, NotebookServer, chromium_executable

if t.TYPE_CHECKING:
    from playwright.sync_api import Browser

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
ARTIFACTS = REPO / "test-artifacts"

# Widgets answer within milliseconds; the margin is for a busy 2-core CI machine.
expect.set_options(timeout=15_000)

# Screenshots the scenarios take on purpose; `make screenshots` points this at docs/screenshots.
SCREENSHOTS_ENV = "KERNEL_COMM_EXT_SCREENSHOTS"


class OpenNotebook(t.Protocol):
    """Open a copy of ``examples/<example>`` in JupyterLab, optionally on another kernel."""

    def __call__(self, example: str, kernel: str | None = None) -> NotebookPage: ...


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> t.Generator[None, t.Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed


_CALL_FAILED = pytest.StashKey[bool]()


# Kernels of the servers start on ipykernel's comm layer unless a test loads the extension.
KERNELS_PLAIN = {"KERNEL_COMM_EXT_AUTOLOAD": "0"}


def _running(server: LabServer) -> t.Iterator[LabServer]:
    """Start ``server`` for as long as the fixture lives; always stop it."""
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[LabServer]:
    """``jupyter lab`` on 127.0.0.1, its kernels on ipykernel's comm layer unless loaded."""
    yield from _running(LabServer(tmp_path_factory.mktemp("lab"), env=KERNELS_PLAIN))


@pytest.fixture(scope="session")
def notebook_server(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[LabServer]:
    """Notebook 7 (``jupyter notebook``) on 127.0.0.1, set up as ``lab_server`` is."""
    yield from _running(NotebookServer(tmp_path_factory.mktemp("notebook"), env=KERNELS_PLAIN))


@pytest.fixture(scope="session")
def chromium() -> t.Iterator[Browser]:
    """Debian's chromium, headless, driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    executable = chromium_executable()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def screenshots() -> Path:
    """Where scenarios save their screenshots."""
    return Path(os.environ.get(SCREENSHOTS_ENV) or ARTIFACTS / "screenshots")


@contextlib.contextmanager
def notebook_opener(
    request: pytest.FixtureRequest, server: LabServer, chromium: Browser, offline: bool = False
) -> t.Iterator[OpenNotebook]:
    """Open copies of example notebooks in ``server``'s frontend; close them all at the end.

    With ``offline``, the test also fails if any page asked for anything but the server
    on 127.0.0.1 (a CDN, a tile server): the libraries must load from their wheels.
    """
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    requested: list[str] = []
    context.on("request", lambda r: requested.append(r.url))
    folder = request.node.name.replace("[", "-").replace("]", "")
    pages: list[NotebookPage] = []

    def open_(example: str, kernel: str | None = None) -> NotebookPage:
        (server.root / folder).mkdir(exist_ok=True)
        nb = nbformat.read(EXAMPLES / example, as_version=4)
        if kernel is not None:
            nb.metadata.kernelspec.name = kernel
        nbformat.write(nb, server.root / folder / example)
        page = NotebookPage.open(context, server, f"{folder}/{example}")
        pages.append(page)
        return page

    try:
        yield open_
    finally:
        if request.node.stash.get(_CALL_FAILED, False):
            for index, page in enumerate(pages):
                with contextlib.suppress(Exception):  # best effort: the test failed already
                    page.screenshot(ARTIFACTS / "failures" / f"{folder}-{index}.png", settle=False)
        for page in pages:
            page.close()
        context.close()
        server.end_sessions()
    if offline:
        away = sorted({url for url in requested if not _local(url)})
        assert not away, f"the pages asked for addresses off this machine: {away}"


def _local(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname == "127.0.0.1"


@pytest.fixture
def open_compat(
    request: pytest.FixtureRequest, lab_server: LabServer, chromium: Browser
) -> t.Iterator[OpenNotebook]:
    """Open example notebooks in JupyterLab; the pages may load nothing from off the machine."""
    with notebook_opener(request, lab_server, chromium, offline=True) as open_:
        yield open_


@pytest.fixture
def open_notebook(
    request: pytest.FixtureRequest, lab_server: LabServer, chromium: Browser
) -> t.Iterator[OpenNotebook]:
    """Open a copy of an example notebook in JupyterLab; everything is closed after the test."""
    with notebook_opener(request, lab_server, chromium) as open_:
        yield open_
