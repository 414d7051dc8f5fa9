"""Facts about auto-enable in this environment, for the ``status`` command.

Without starting a kernel: is the startup file installed where IPython reads
it (or stranded where it does not, as after ``pip install --user``), and what
do the off switches say, reading the environment and the IPython kernel config
files the way a kernel of this Python would.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import site
import sys
import typing as t
from pathlib import Path

from traitlets.config import Config

from ..autoload import STARTUP_FILE_NAME, Decision, decide


@dataclasses.dataclass(frozen=True)
class StartupFiles:
    """Where the startup file is expected, and where copies of it were found."""

    expected: Path
    installed: bool
    stranded: tuple[Path, ...]


@dataclasses.dataclass(frozen=True)
class KernelConfig:
    """The merged IPython kernel config of this Python's default profile, and its files."""

    config: Config
    files: tuple[str, ...]
    error: str | None


def startup_files(prefix: str = sys.prefix) -> StartupFiles:
    """Whether the startup file is installed in ``prefix``; copies IPython would not read."""
    expected = Path(prefix, "etc", "ipython", "startup", STARTUP_FILE_NAME)
    # pip install --user puts the wheel's data under the user base, which IPython never reads.
    unread = [Path(site.getuserbase(), "etc", "ipython", "startup", STARTUP_FILE_NAME)]
    stranded = tuple(p for p in unread if p != expected and p.is_file())
    return StartupFiles(expected=expected, installed=expected.is_file(), stranded=stranded)


def kernel_config() -> KernelConfig:
    """Load ``ipython_config`` and ``ipython_kernel_config`` files as an ipykernel would."""
    from IPython.core.application import BaseIPythonApplication  # noqa: PLC0415

    class KernelConfigReader(BaseIPythonApplication):
        name = "ipython-kernel"  # reads ipython_kernel_config.py, as IPKernelApp does

    # A broken config file is logged and skipped, as in a kernel; collect what is logged.
    problems = _Collector()
    log = logging.getLogger("kernel_comm_ext.status")
    log.propagate = False
    log.addHandler(problems)
    # IPython's application methods are not annotated.
    reader: t.Any = KernelConfigReader(log=log)  # type: ignore[no-untyped-call]
    try:
        reader.init_profile_dir()
        reader.init_config_files()
        reader.load_config_file()
    except Exception as exc:
        problems.messages.append(repr(exc))
    finally:
        log.removeHandler(problems)
    error = "; ".join(problems.messages) or None
    return KernelConfig(reader.config, tuple(reader.loaded_config_files), error)


class _Collector(logging.Handler):
    """Keeps the warnings and errors logged while reading config files."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message += f" ({record.exc_info[1]!r})"
        self.messages.append(message)


def decision(
    environ: t.Mapping[str, str] | None = None, config: KernelConfig | None = None
) -> Decision:
    """What auto-enable would decide in a new kernel started from this environment."""
    environ = os.environ if environ is None else environ
    config = kernel_config() if config is None else config
    return decide(environ, config.config)
