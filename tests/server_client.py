"""Fixtures of a real Jupyter Server for tests, and its websocket client of kernels.

The server and client live in ``kernel_comm_ext.testing.server_client`` (the
demo uses them too). Fixtures: ``jupyter_server`` (one server per test
session, default IOPub rate limits) and ``server_kernel`` (a fresh kernel on
it, always shut down). Kernels start on ipykernel's own comm layer (autoload
off); run ``%load_ext kernel_comm_ext`` to test the extension.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest

from kernel_comm_ext.testing.client_common import Message
from kernel_comm_ext.testing.server_client import (
    DEFAULT_TIMEOUT,
    JupyterServer,
    ServerError,
    ServerExecution,
    ServerKernel,
    pack_ws_message,
    start_jupyter_server,
    unpack_ws_message,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "JupyterServer",
    "Message",
    "ServerError",
    "ServerExecution",
    "ServerKernel",
    "jupyter_server",
    "pack_ws_message",
    "server_kernel",
    "start_jupyter_server",
    "unpack_ws_message",
]

# Kernels of the server start on ipykernel's own comm layer, as in conftest.py.
SERVER_ENV = {"KERNEL_COMM_EXT_AUTOLOAD": "0"}


@pytest.fixture(scope="session")
def jupyter_server(
    tmp_path_factory: pytest.TempPathFactory, isolated_jupyter_dirs: Path
) -> t.Iterator[JupyterServer]:
    """One real Jupyter Server for the test session, with default rate limits."""
    server = start_jupyter_server(tmp_path_factory.mktemp("jupyter-server"), env=SERVER_ENV)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server_kernel(jupyter_server: JupyterServer) -> t.Iterator[ServerKernel]:
    """A fresh kernel of ``jupyter_server``, connected over its websocket; always shut down."""
    kernel = jupyter_server.start_kernel()
    try:
        yield kernel
    finally:
        kernel.shutdown()
