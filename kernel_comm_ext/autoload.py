"""Auto-enable: loading the extension into every new kernel of an environment, and its off switch.

The wheel installs ``jupyter-config/ipython/startup/00-kernel-comm-ext.py`` as
``{sys.prefix}/etc/ipython/startup/00-kernel-comm-ext.py``; IPython runs it in
every shell of that prefix. The file only calls ``load_into`` here, and only in
a Jupyter kernel. Two things turn auto-enable off: the environment variable
``KERNEL_COMM_EXT_AUTOLOAD`` (``0``/``false``/``no``/``off``), which wins when
set, and the setting ``c.KernelCommManager.autoload = False``. The status
command (``cli.py``) reads the same decision.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import typing as t

from traitlets.config import Config
from traitlets.config.loader import DeferredConfigString

from .kernel.manager import KernelCommManager

ENV_VAR = "KERNEL_COMM_EXT_AUTOLOAD"
OFF_VALUES = frozenset({"0", "false", "no", "off"})
ON_VALUES = frozenset({"1", "true", "yes", "on"})
SETTING = "KernelCommManager.autoload"
STARTUP_FILE_NAME = "00-kernel-comm-ext.py"

logger = logging.getLogger("kernel_comm_ext")


@dataclasses.dataclass(frozen=True)
class Decision:
    """Whether auto-enable loads the extension, and why (a sentence for people)."""

    enabled: bool
    reason: str
    problems: tuple[str, ...] = ()


#: What the startup file decided in this process (None: it did not run here).
last_decision: Decision | None = None


def env_switch(environ: t.Mapping[str, str]) -> tuple[bool | None, str | None]:
    """The environment variable's say: (True/False, or None when unset or unreadable, problem)."""
    raw = environ.get(ENV_VAR)
    if raw is None or not raw.strip():
        return None, None
    value = raw.strip().lower()
    if value in OFF_VALUES:
        return False, None
    if value in ON_VALUES:
        return True, None
    return None, (
        f"{ENV_VAR}={raw!r} is not understood (use 0/false/no/off or 1/true/yes/on); ignored"
    )


def config_switch(config: Config) -> tuple[bool | None, str | None]:
    """The setting ``c.KernelCommManager.autoload``: (True/False or None when unset, problem).

    A value that is not a bool turns auto-enable off: the extension could not
    load with it anyway (traitlets rejects it when the manager is made).
    """
    if SETTING not in config:
        return None, None
    value = config["KernelCommManager"]["autoload"]
    # From a command line (--KernelCommManager.autoload=...) it is still a string.
    if isinstance(value, DeferredConfigString):
        trait = KernelCommManager.class_traits()["autoload"]
        try:
            value = value.get_value(trait)
        except Exception:
            value = str(value)
    if isinstance(value, bool):
        return value, None
    return False, f"c.{SETTING} = {value!r} is not True or False"


def decide(environ: t.Mapping[str, str], config: Config) -> Decision:
    """Whether auto-enable should load the extension, given the environment and the config."""
    from_env, env_problem = env_switch(environ)
    from_config, config_problem = config_switch(config)
    problems = tuple(p for p in (env_problem, config_problem) if p)
    if from_env is False:
        return Decision(False, f"off: {ENV_VAR}={environ[ENV_VAR]}", problems)
    if from_env is True:
        return Decision(True, f"on: {ENV_VAR}={environ[ENV_VAR]}", problems)
    if from_config is False:
        reason = f"off: {config_problem}" if config_problem else f"off: c.{SETTING} = False"
        return Decision(False, reason, problems)
    if from_config is True:
        return Decision(True, f"on: c.{SETTING} = True", problems)
    return Decision(True, "on (the default)", problems)


def load_into(shell: t.Any) -> Decision:
    """Load the extension into the kernel of ``shell`` unless switched off; never raises.

    Called by the startup file. Loading goes through IPython's extension
    manager, so ``%load_ext``, ``%reload_ext`` and ``%unload_ext`` see it.
    """
    global last_decision  # noqa: PLW0603 - one decision per kernel process
    log = _log_of(shell)
    try:
        decision = decide(os.environ, shell.config)
    except Exception as exc:
        decision = Decision(False, f"off: could not read the off switch ({exc!r})")
        log.error("kernel-comm-ext: could not read the auto-enable switch", exc_info=exc)
    for problem in decision.problems:
        log.warning("kernel-comm-ext: %s", problem)
    if decision.enabled:
        try:
            shell.extension_manager.load_extension("kernel_comm_ext")
        except Exception as exc:
            decision = Decision(False, f"failed: {exc!r}", decision.problems)
            log.error("kernel-comm-ext: auto-enable failed to load the extension", exc_info=exc)
        else:
            log.info("kernel-comm-ext auto-enabled (%s)", decision.reason)
    else:
        log.info("kernel-comm-ext auto-enable is %s", decision.reason)
    last_decision = decision
    return decision


def kernel_report() -> dict[str, t.Any]:
    """What a running kernel says about the extension (asked by ``status --check``)."""
    import sys  # noqa: PLC0415 - the report names this kernel's interpreter

    from IPython import get_ipython  # noqa: PLC0415 - only inside a kernel

    from ._version import __version__  # noqa: PLC0415

    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    manager = getattr(kernel, "comm_manager", None)
    loaded: t.Collection[str] = getattr(getattr(shell, "extension_manager", None), "loaded", set())
    return {
        "active": isinstance(manager, KernelCommManager),
        "manager": f"{type(manager).__module__}.{type(manager).__qualname__}",
        "loaded_as_extension": "kernel_comm_ext" in loaded,
        "autoload": None if last_decision is None else dataclasses.asdict(last_decision),
        "version": __version__,
        "python": sys.executable,
        "prefix": sys.prefix,
    }


def _log_of(shell: t.Any) -> logging.Logger | logging.LoggerAdapter[t.Any]:
    """The kernel's log (its stderr, shown by the Jupyter server), else ours."""
    log = getattr(getattr(shell, "kernel", None), "log", None)
    return log if isinstance(log, logging.Logger | logging.LoggerAdapter) else logger
