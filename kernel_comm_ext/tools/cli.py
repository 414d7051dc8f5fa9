"""The command line: ``python -m kernel_comm_ext status`` and ``jupyter kernel-comm-ext status``.

``status`` says whether new kernels of this environment load kernel-comm-ext
by themselves: whether the startup file is installed, whether an off switch
applies and why; with ``--check`` it starts a real kernel and asks it. The exit
status is 0, or with ``--check`` 0 when the extension is active in that kernel,
1 when it is not and 2 when the kernel could not be started or asked.
"""

from __future__ import annotations

import argparse
import os
import sys
import typing as t

from .._version import __version__
from ..autoload import ENV_VAR, SETTING
from . import status

ACTIVE, NOT_ACTIVE, CHECK_FAILED = 0, 1, 2


def main(argv: t.Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    if args.command != "status":
        _parser().print_help()
        return 0
    return run_status(check=args.check, kernel_name=args.kernel)


def run_status(check: bool = False, kernel_name: str = "python3") -> int:
    """Print the auto-enable status of this environment (and of a real kernel with ``check``)."""
    files = status.startup_files()
    config = status.kernel_config()
    decision = status.decision(os.environ, config)

    print(f"kernel-comm-ext {__version__} in {sys.prefix}")
    if files.installed:
        print(f"startup file:  installed, {files.expected}")
    else:
        print(f"startup file:  NOT installed (expected {files.expected})")
    for path in files.stranded:
        print(f"               found at {path}, which IPython does not read (pip install --user?)")
    env_value = os.environ.get(ENV_VAR)
    print(f"environment:   {ENV_VAR}=" + ("(not set)" if env_value is None else env_value))
    print(f"config:        c.{SETTING} " + _config_value(config))
    for problem in decision.problems:
        print(f"problem:       {problem}")
    print("auto-enable:   " + _summary(files.installed, decision.enabled, decision.reason))
    if not check:
        return 0
    return _print_check(kernel_name)


def _config_value(config: status.KernelConfig) -> str:
    where = ", ".join(config.files) if config.files else "no kernel config files"
    value = (
        f"= {config.config['KernelCommManager']['autoload']!r}"
        if SETTING in config.config
        else "not set"
    )
    line = f"{value} ({where})"
    if config.error:
        line += f"; reading them failed: {config.error}"
    return line


def _summary(installed: bool, enabled: bool, reason: str) -> str:
    if not installed:
        return "off: the startup file is not installed in this environment (see README)"
    if not enabled:
        return reason
    return f"{reason}: new kernels of this environment load kernel-comm-ext"


def _print_check(kernel_name: str) -> int:
    from .kernel_check import check_kernel  # noqa: PLC0415 - imports jupyter_client

    print(f"kernel check:  starting kernel {kernel_name!r}...", flush=True)
    result = check_kernel(kernel_name)
    report = result.report
    if report.get("python"):
        here = " (this environment)" if report.get("prefix") == sys.prefix else ""
        print(f"               it runs {report['python']}{here}")
    if result.error:
        print(f"               {result.error}")
        if not report:
            return CHECK_FAILED
    if result.active:
        autoload = report.get("autoload") or {}
        how = "auto-enabled" if autoload.get("enabled") else "loaded by config"
        print(f"               kernel-comm-ext is ACTIVE in it ({how})")
        return ACTIVE
    autoload = report.get("autoload")
    why = f"; auto-enable {autoload['reason']}" if autoload else ""
    manager = report.get("manager")
    print(f"               kernel-comm-ext is NOT active in it (comm manager {manager}){why}")
    return NOT_ACTIVE


def _parser() -> argparse.ArgumentParser:
    prog = "jupyter kernel-comm-ext" if _invoked_as_jupyter() else "python -m kernel_comm_ext"
    parser = argparse.ArgumentParser(prog=prog, description="kernel-comm-ext " + __version__)
    commands = parser.add_subparsers(dest="command")
    status_parser = commands.add_parser(
        "status",
        help="does every new kernel of this environment load kernel-comm-ext?",
        description="Whether the auto-enable startup file is installed, whether an off switch "
        f"({ENV_VAR}=0, c.{SETTING} = False) applies, and with --check whether a real "
        "kernel has the extension active.",
    )
    status_parser.add_argument(
        "--check",
        action="store_true",
        help="start a kernel and report whether the extension is active in it "
        "(exit status 0 active, 1 not active, 2 kernel failed)",
    )
    status_parser.add_argument(
        "--kernel", default="python3", help="kernelspec for --check (default: python3)"
    )
    return parser


def _invoked_as_jupyter() -> bool:
    return os.path.basename(sys.argv[0]).startswith("jupyter-")
