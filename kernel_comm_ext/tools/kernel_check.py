"""``status --check``: start a real kernel as Jupyter would and ask it about the extension.

The kernel comes from a kernelspec (``python3`` unless told otherwise) through
jupyter_client, with this process's environment, so it sees the same switches a
notebook started from here would. It is asked through ``user_expressions``,
which run nothing in the user namespace, and always shut down.
"""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import tempfile
import typing as t

REPORT_EXPRESSION = '__import__("kernel_comm_ext.autoload").autoload.kernel_report()'
FALLBACK_EXPRESSION = (
    "(__import__('sys').executable, __import__('sys').prefix,"
    " type(get_ipython().kernel.comm_manager).__module__ + '.'"
    " + type(get_ipython().kernel.comm_manager).__qualname__)"
)


@dataclasses.dataclass(frozen=True)
class KernelCheck:
    """What a freshly started kernel said (``error`` when it could not be asked)."""

    kernel_name: str
    active: bool
    report: dict[str, t.Any]
    error: str | None = None


def check_kernel(kernel_name: str = "python3", timeout: float = 60.0) -> KernelCheck:
    """Start kernel ``kernel_name``, ask whether kernel-comm-ext is active in it, shut it down."""
    from jupyter_client.manager import start_new_kernel  # noqa: PLC0415 - only for --check

    with tempfile.TemporaryFile() as log:
        try:
            km, kc = start_new_kernel(
                kernel_name=kernel_name,
                startup_timeout=timeout,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        except Exception as exc:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-2000:]
            error = f"could not start the kernel: {exc!r}" + (f"\n{tail}" if tail else "")
            return KernelCheck(kernel_name, False, {}, error)
        return _ask(kernel_name, km, kc, timeout)


def _ask(kernel_name: str, km: t.Any, kc: t.Any, timeout: float) -> KernelCheck:
    try:
        expressions = {"report": REPORT_EXPRESSION, "fallback": FALLBACK_EXPRESSION}
        msg_id = kc.execute("", silent=True, store_history=False, user_expressions=expressions)
        reply = kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=timeout)
        results = reply["content"].get("user_expressions", {})
    except Exception as exc:
        return KernelCheck(kernel_name, False, {}, f"the kernel did not answer: {exc!r}")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return _interpret(kernel_name, results)


def _interpret(kernel_name: str, results: dict[str, t.Any]) -> KernelCheck:
    report = _value(results.get("report"))
    if isinstance(report, dict):
        return KernelCheck(kernel_name, bool(report.get("active")), report)
    # kernel_comm_ext is not importable in that kernel: say what it runs instead.
    fallback = _value(results.get("fallback"))
    if isinstance(fallback, tuple) and len(fallback) == 3:
        python, prefix, manager = fallback
        found = {"python": python, "prefix": prefix, "manager": manager}
        error = results.get("report", {}).get("evalue") or "kernel_comm_ext cannot be imported"
        return KernelCheck(kernel_name, False, found, f"not importable in that kernel: {error}")
    return KernelCheck(kernel_name, False, {}, f"unexpected answer from the kernel: {results!r}")


def _value(result: t.Any) -> t.Any:
    """The Python literal a user expression evaluated to, or None."""
    if not isinstance(result, dict) or result.get("status") != "ok":
        return None
    try:
        return ast.literal_eval(result["data"]["text/plain"])
    except (KeyError, ValueError, SyntaxError):
        return None
