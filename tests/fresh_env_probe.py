"""Run by a fresh environment's own Python: start its ``python3`` kernel as Jupyter would.

jupyter_client of that environment finds the ``python3`` kernelspec of that
environment and starts it; the probe asks the kernel about its comm manager,
runs the given cells and prints one JSON object on stdout:

    python fresh_env_probe.py '{"cells": ["%comm"]}'

Asked first, through user_expressions (which run nothing in the user namespace):
``manager``, ``loaded`` (extensions), ``user_names`` (the user namespace), ``prefix``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import typing as t

from jupyter_client.manager import start_new_kernel

EXPRESSIONS = {
    "manager": "type(get_ipython().kernel.comm_manager).__module__ + '.'"
    " + type(get_ipython().kernel.comm_manager).__name__",
    "loaded": "sorted(get_ipython().extension_manager.loaded)",
    "user_names": "sorted(get_ipython().user_ns)",
    "prefix": "__import__('sys').prefix",
}


def ask(kc: t.Any, expressions: dict[str, str]) -> dict[str, t.Any]:
    msg_id = kc.execute("", silent=True, store_history=False, user_expressions=expressions)
    reply = kc.get_shell_msg(timeout=30)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=30)
    answers = {}
    for name, result in reply["content"]["user_expressions"].items():
        if result["status"] == "ok":
            answers[name] = result["data"]["text/plain"]
        else:
            answers[name] = f"!{result['ename']}: {result['evalue']}"
    return answers


def run_cell(kc: t.Any, code: str) -> dict[str, t.Any]:
    out: dict[str, t.Any] = {"stdout": "", "stderr": "", "errors": []}

    def hook(msg: dict[str, t.Any]) -> None:
        if msg["msg_type"] == "stream":
            out[msg["content"]["name"]] += msg["content"]["text"]
        elif msg["msg_type"] == "error":
            out["errors"].append(f"{msg['content']['ename']}: {msg['content']['evalue']}")

    reply = kc.execute_interactive(code, timeout=30, output_hook=hook, store_history=False)
    out["status"] = reply["content"]["status"]
    return out


def main() -> None:
    request = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    with tempfile.TemporaryFile() as log:
        km, kc = start_new_kernel(kernel_name="python3", stdout=log, stderr=log)
        try:
            spec = km.kernel_spec
            assert spec is not None
            result: dict[str, t.Any] = {
                "kernel_argv": spec.argv,
                "expressions": ask(kc, EXPRESSIONS),
            }
            result["cells"] = [run_cell(kc, code) for code in request.get("cells", [])]
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
        log.seek(0)
        result["log"] = log.read().decode(errors="replace")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
