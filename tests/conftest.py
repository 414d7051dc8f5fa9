"""Fixtures: real kernels with isolated Jupyter and IPython directories, always shut down."""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

import pytest

from kernel_comm_ext.testing.client_common import isolated_dirs_env

from .frontend import Frontend, close_jupyter_client_loop, start_frontend

# Kernels of the test environment start on ipykernel's own comm layer unless a
# test loads the extension: the package's auto-enable startup file is off here.
AUTOLOAD_OFF = {"KERNEL_COMM_EXT_AUTOLOAD": "0"}


@pytest.fixture(scope="session", autouse=True)
def isolated_jupyter_dirs(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[Path]:
    """Point Jupyter and IPython at empty directories for the whole run."""
    root = tmp_path_factory.mktemp("jupyter-home")
    env = isolated_dirs_env(root)
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    yield root
    close_jupyter_client_loop()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def kernel_log_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def kernel(kernel_log_dir: Path) -> t.Iterator[Frontend]:
    """A fresh kernel on ipykernel's default comm layer."""
    frontend = start_frontend(kernel_log_dir, env=AUTOLOAD_OFF)
    try:
        yield frontend
    finally:
        frontend.shutdown()


@pytest.fixture
def ext_kernel(kernel: Frontend) -> Frontend:
    """A fresh kernel with ``%load_ext kernel_comm_ext`` done."""
    kernel.run("%load_ext kernel_comm_ext")
    return kernel


# A real Jupyter Server and a websocket client of its kernels (tests/server_client.py).
from .server_client import jupyter_server, server_kernel  # noqa: E402, F401
