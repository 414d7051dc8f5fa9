"""Loading and unloading the extension in a live kernel loses nothing."""

from __future__ import annotations

import os
import subprocess
import sys

from .frontend import Frontend

SETUP_BEFORE_LOAD = """
import comm, ipywidgets
from IPython.display import display
kernel = get_ipython().kernel
original_manager = kernel.comm_manager
original_hooks = (comm.create_comm, comm.get_comm_manager)
original_handlers = {k: kernel.shell_handlers[k] for k in ("comm_open", "comm_msg", "comm_close")}

slider = ipywidgets.IntSlider(value=1)
display(slider)
raw_received = []
raw = comm.create_comm(target_name="raw", data={"hello": "before"})
raw.on_msg(lambda msg: raw_received.append(msg["content"]["data"]))

echo_opened = []
def echo_target(c, msg):
    echo_opened.append(c.comm_id)
    c.on_msg(lambda m: c.send({"echo": m["content"]["data"]}, buffers=m["buffers"]))
kernel.comm_manager.register_target("echo", echo_target)
"""

STATE_CHECK = """
from kernel_comm_ext import KernelCommManager
m = kernel.comm_manager
ours = isinstance(m, KernelCommManager)
"""


def _check_both_directions(fe: Frontend, label: str) -> None:
    """The slider, the raw comm and the echo target all work, both ways."""
    slider_id = fe.eval("slider.model_id")
    raw_id = fe.eval("raw.comm_id")
    value = len(label) * 10

    # frontend -> kernel, on a widget created before the swap
    fe.send_comm(slider_id, {"method": "update", "state": {"value": value}, "buffer_paths": []})
    assert fe.eval("slider.value") == value
    # kernel -> frontend
    mark = fe.mark()
    fe.run(f"slider.value = {value + 1}")
    updates = fe.wait_for("comm_msg", comm_id=slider_id, since=mark)
    assert updates[-1]["content"]["data"]["state"] == {"value": value + 1}

    fe.send_comm(raw_id, {"label": label})
    assert fe.eval("raw_received[-1]") == {"label": label}
    mark = fe.mark()
    fe.run(f"raw.send({{'from_kernel': {label!r}}})")
    sent = fe.wait_for("comm_msg", comm_id=raw_id, since=mark)
    assert sent[-1]["content"]["data"] == {"from_kernel": label}

    echo_id = fe.open_comm("echo")
    assert fe.eval("echo_opened[-1]") == echo_id
    mark = fe.mark()
    fe.send_comm(echo_id, {"n": 1}, buffers=[label.encode()])
    echoed = fe.wait_for("comm_msg", comm_id=echo_id, since=mark)[0]
    assert echoed["content"]["data"] == {"echo": {"n": 1}}
    assert [bytes(b) for b in echoed["buffers"]] == [label.encode()]


def test_load_installs_manager_hooks_handlers_and_configurable(kernel: Frontend) -> None:
    kernel.run("%load_ext kernel_comm_ext")
    kernel.run(SETUP_BEFORE_LOAD.split("slider =", maxsplit=1)[0] + STATE_CHECK)
    assert kernel.eval("ours")
    assert kernel.eval("comm.get_comm_manager() is m")
    assert kernel.eval("comm.create_comm.__self__ is m")
    assert kernel.eval(
        "all(kernel.shell_handlers[k].__self__ is m"
        " for k in ('comm_open', 'comm_msg', 'comm_close'))"
    )
    assert kernel.eval("m in get_ipython().configurables")
    assert kernel.eval("type(comm.create_comm(target_name='x')).__name__") == "KernelComm"


def test_swap_is_lossless_both_ways(kernel: Frontend) -> None:
    kernel.run(SETUP_BEFORE_LOAD)
    _check_both_directions(kernel, "default")
    before = kernel.eval("sorted(kernel.comm_manager.comms)")
    targets = kernel.eval("sorted(kernel.comm_manager.targets)")
    assert "jupyter.widget" in targets

    kernel.run("%load_ext kernel_comm_ext")
    kernel.run(STATE_CHECK)
    assert kernel.eval("ours")
    assert kernel.eval("sorted(m.comms)") == before
    assert kernel.eval("sorted(m.targets)") == targets
    assert kernel.eval("len(original_manager.comms), len(original_manager.targets)") == (0, 0)
    _check_both_directions(kernel, "loaded")

    # loading again changes nothing
    kernel.run("manager_after_first_load = kernel.comm_manager")
    kernel.run("%load_ext kernel_comm_ext")
    assert kernel.eval("kernel.comm_manager is manager_after_first_load")
    assert kernel.eval("comm.get_comm_manager() is manager_after_first_load")
    opened_while_loaded = kernel.eval("sorted(kernel.comm_manager.comms)")

    kernel.run("%unload_ext kernel_comm_ext")
    assert kernel.eval("kernel.comm_manager is original_manager")
    assert kernel.eval("(comm.create_comm, comm.get_comm_manager) == original_hooks")
    assert kernel.eval(
        "all(kernel.shell_handlers[k] == original_handlers[k] for k in original_handlers)"
    )
    assert kernel.eval("original_manager in get_ipython().configurables")
    assert kernel.eval("manager_after_first_load not in get_ipython().configurables")
    assert kernel.eval("sorted(original_manager.comms)") == opened_while_loaded
    assert kernel.eval("sorted(original_manager.targets)") == targets
    assert kernel.eval("len(manager_after_first_load.comms)") == 0
    _check_both_directions(kernel, "unloaded")

    kernel.run("%load_ext kernel_comm_ext")
    everything = kernel.eval("sorted(kernel.comm_manager.comms)")
    kernel.run("%reload_ext kernel_comm_ext")
    kernel.run(STATE_CHECK)
    assert kernel.eval("ours")
    assert kernel.eval("sorted(m.comms)") == everything
    assert kernel.eval("sorted(m.targets)") == targets
    _check_both_directions(kernel, "reloaded")
    assert "Traceback" not in kernel.kernel_log()


def test_comm_opened_on_old_manager_keeps_its_close_path(kernel: Frontend) -> None:
    """A comm of ipykernel's class, moved into our manager, closes through ours."""
    kernel.run("import comm; old = comm.create_comm(target_name='old')")
    kernel.run("%load_ext kernel_comm_ext")
    comm_id = kernel.eval("old.comm_id")
    assert kernel.eval("old.comm_id in get_ipython().kernel.comm_manager.comms")
    mark = kernel.mark()
    kernel.run("old.close()")
    assert len(kernel.wait_for("comm_close", comm_id=comm_id, since=mark)) == 1
    assert not kernel.eval("old.comm_id in get_ipython().kernel.comm_manager.comms")


def test_outside_a_kernel_prints_and_changes_nothing() -> None:
    code = (
        "import comm; before = (comm.create_comm, comm.get_comm_manager)\n"
        "get_ipython().run_line_magic('load_ext', 'kernel_comm_ext')\n"
        "print('unchanged:', (comm.create_comm, comm.get_comm_manager) == before)\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--quick", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KERNEL_COMM_EXT_AUTOLOAD": "0"},
        check=True,
    )
    assert "not running in a Jupyter kernel" in result.stdout
    assert "unchanged: True" in result.stdout
