"""Comm callbacks while a cell runs: the cell's figure stays the cell's.

A jupyter_client frontend does what JupyterLab 4.6 does by default: it asks
for a subshell on the control channel and sends widget updates with that
``subshell_id`` in the header, while a cell draws a figure under
``%matplotlib inline``. The cell's figure must reach the cell (its parent is
the execute_request) in every run; the callback's own output must reach the
comm message that caused it. README: "Callbacks and the running cell".
"""

from __future__ import annotations

import time

import pytest

from .frontend import Frontend
from .helpers import report, supports_subshells
from .test_subshells import create_subshell, send_execute

pytest.importorskip("matplotlib")
pytest.importorskip("ipywidgets")

RUNS = 12
UPDATES = 20

SETUP = """
%matplotlib inline
import time, threading
import matplotlib.pyplot as plt
import ipywidgets as widgets
slider = widgets.IntSlider(max=10**6)
seen = []
def on_value(change):
    seen.append(change["new"])
    print("value", change["new"])
slider.observe(on_value, names="value")
"""

# Long enough for the 20 updates (0.6 s) or the move (at 0.2 s) to arrive while it runs.
CELL = "fig = plt.figure(); plt.plot([1, 2, 3]); time.sleep(1.0)"


def send_update(fe: Frontend, comm_id: str, value: int, subshell_id: str | None) -> str:
    """Send an ipywidgets state update as JupyterLab does (to a subshell if given)."""
    content = {
        "comm_id": comm_id,
        "data": {"method": "update", "state": {"value": value}, "buffer_paths": []},
    }
    msg = fe.session.msg("comm_msg", content)
    if subshell_id is not None:
        msg["header"]["subshell_id"] = subshell_id
    fe.session.send(fe.kc.shell_channel.socket, msg)
    return str(msg["header"]["msg_id"])


def figures(fe: Frontend, parent_id: str, since: int) -> int:
    return sum(
        1
        for m in fe.iopub(parent_id=parent_id, since=since)
        if m["msg_type"] == "display_data" and "image/png" in m["content"]["data"]
    )


def callback_output(fe: Frontend, msg_id: str, text: str, since: int) -> bool:
    """Whether ``text`` was printed under comm message ``msg_id`` (it may follow its idle)."""
    deadline = time.monotonic() + 5
    while True:
        printed = "".join(
            m["content"]["text"]
            for m in fe.iopub("stream", parent_id=msg_id, since=since)
            if m["content"]["name"] == "stdout"
        )
        if text in printed:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def run_scenario(fe: Frontend, use_subshell: bool, runs: int = RUNS) -> tuple[int, int, int]:
    """Run the issue's scenario ``runs`` times; return (cell figures ok, callbacks ok, updates)."""
    fe.run(SETUP)
    comm_id = fe.eval("slider.model_id")
    subshell = create_subshell(fe) if use_subshell else None
    figure_ok = output_ok = 0
    value = 0
    for _ in range(runs):
        since = fe.mark()
        cell = send_execute(fe, CELL)
        fe.wait_for("execute_input", parent_id=cell, since=since)
        updates = []
        for _ in range(UPDATES):
            value += 1
            updates.append((value, send_update(fe, comm_id, value, subshell)))
            time.sleep(0.03)
        fe.wait_idle(cell)
        for _, msg_id in updates:
            fe.wait_idle(msg_id)
        if figures(fe, cell, since) == 1:
            figure_ok += 1
        if all(callback_output(fe, msg_id, f"value {v}", since) for v, msg_id in updates):
            output_ok += 1
    assert fe.eval("len(seen)") == runs * UPDATES
    return figure_ok, output_ok, runs * UPDATES


def prepare(fe: Frontend, use_subshell: bool) -> None:
    if use_subshell and not supports_subshells(fe):
        pytest.skip("this ipykernel has no kernel subshells")


@pytest.mark.parametrize("dispatch", ["main", "routed"])
@pytest.mark.parametrize("use_subshell", [True, False], ids=["subshells", "no-subshells"])
def test_cell_figure_reaches_the_cell(
    kernel: Frontend, use_subshell: bool, dispatch: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fe = kernel
    prepare(fe, use_subshell)
    fe.run(f"%load_ext kernel_comm_ext\n%config KernelCommManager.callback_dispatch = {dispatch!r}")
    figure_ok, output_ok, updates = run_scenario(fe, use_subshell)
    report(
        capsys,
        f"kernel-comm-ext ({dispatch}, subshells={use_subshell}): cell figure in the cell"
        f" {figure_ok}/{RUNS}, callback output under its comm message {output_ok}/{RUNS}"
        f" ({updates} updates)",
    )
    assert figure_ok == RUNS
    assert output_ok == RUNS


@pytest.mark.parametrize("use_subshell", [True, False], ids=["subshells", "no-subshells"])
def test_default_layer_records_the_loss(
    kernel: Frontend, use_subshell: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """ipykernel's own comm layer in the same scenario: recorded, not asserted."""
    fe = kernel
    prepare(fe, use_subshell)
    figure_ok, output_ok, updates = run_scenario(fe, use_subshell)
    report(
        capsys,
        f"ipykernel's comm layer (subshells={use_subshell}): cell figure in the cell"
        f" {figure_ok}/{RUNS}, callback output under its comm message {output_ok}/{RUNS}"
        f" ({updates} updates)",
    )


DRAWING_CALLBACK = """
drawer = comm.create_comm(target_name="drawer")
def draw(msg):
    plt.figure(); plt.plot([3, 1, 2])
drawer.on_msg(draw)
"""


def images(fe: Frontend, parent_id: str, since: int = 0) -> list[str]:
    return [
        m["content"]["data"]["image/png"]
        for m in fe.iopub("display_data", parent_id=parent_id, since=since)
        if "image/png" in m["content"]["data"]
    ]


@pytest.mark.parametrize("dispatch", ["main", "routed"])
def test_a_callback_figure_shows_under_its_message(ext_kernel: Frontend, dispatch: str) -> None:
    """Between cells the hooks fire: the callback's figure goes out under its comm message."""
    fe = ext_kernel
    fe.run(f"%config KernelCommManager.callback_dispatch = {dispatch!r}")
    fe.run(SETUP + "import comm\n" + DRAWING_CALLBACK)
    comm_id = fe.eval("drawer.comm_id")
    msg_id = fe.send_comm(comm_id, {})
    fe.wait_for("display_data", parent_id=msg_id)
    assert len(images(fe, msg_id)) == 1


def test_a_callback_figure_during_a_wait_stays_apart_from_the_cell(ext_kernel: Frontend) -> None:
    """The cell is paused in a wait: the callback's figure is its own, the cell keeps its own."""
    fe = ext_kernel
    fe.run(SETUP + "import comm\nfrom kernel_comm_ext import wait_for_msg\n" + DRAWING_CALLBACK)
    comm_id = fe.eval("drawer.comm_id")
    since = fe.mark()
    cell = send_execute(
        fe, "plt.figure(); plt.plot([1, 2, 3])\nwait_for_msg(drawer, timeout=20)\nprint('done')"
    )
    fe.wait_for("execute_input", parent_id=cell, since=since)
    time.sleep(0.3)
    msg_id = send_update_raw(fe, comm_id)
    # Handled inside the wait, it gets no status messages (as ipykernel's own
    # concurrent dispatch during an awaiting cell); its figure comes first.
    fe.wait_for("display_data", parent_id=msg_id, since=since)
    fe.wait_idle(cell)
    callback_images, cell_images = images(fe, msg_id, since), images(fe, cell, since)
    assert len(callback_images) == 1
    assert len(cell_images) == 1
    assert callback_images != cell_images


def send_update_raw(fe: Frontend, comm_id: str) -> str:
    content = {"comm_id": comm_id, "data": {}}
    msg = fe.session.msg("comm_msg", content)
    fe.session.send(fe.kc.shell_channel.socket, msg)
    return str(msg["header"]["msg_id"])


INTERACTIVE = """
def plot(x):
    plt.figure(); plt.plot([1, 2, 3]); plt.title("interactive")
ui = widgets.interactive(plot, x=widgets.IntSlider(max=10**6))
x_slider = ui.children[0]
"""


@pytest.mark.parametrize("use_subshell", [True, False], ids=["subshells", "no-subshells"])
@pytest.mark.parametrize("dispatch", ["main", "routed"])
def test_interactive_figures_while_cells_run(
    kernel: Frontend, dispatch: str, use_subshell: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """ipywidgets' interactive drawing with pyplot, moved while cells draw their own figures.

    With ``main`` dispatch every move renders one figure, all equal, and every
    cell keeps its figure. ``routed`` is recorded only: interactive flushes
    every pending figure itself, the concurrently running cell's included.
    """
    fe = kernel
    prepare(fe, use_subshell)
    fe.run(f"%load_ext kernel_comm_ext\n%config KernelCommManager.callback_dispatch = {dispatch!r}")
    fe.run(SETUP + INTERACTIVE)
    comm_id = fe.eval("x_slider.model_id")
    subshell = create_subshell(fe) if use_subshell else None
    renderings: list[str] = []
    moves_ok = cells_ok = 0
    for value in range(1, RUNS + 1):
        since = fe.mark()
        cell = send_execute(fe, CELL)
        fe.wait_for("execute_input", parent_id=cell, since=since)
        time.sleep(0.2)
        move = send_update(fe, comm_id, value, subshell)
        fe.wait_idle(cell)
        fe.wait_idle(move)
        time.sleep(0.1)
        drawn = images(fe, move, since)
        renderings += drawn
        moves_ok += len(drawn) == 1
        cells_ok += len(images(fe, cell, since)) == 1
    report(
        capsys,
        f"interactive ({dispatch}, subshells={use_subshell}): one rendering per move"
        f" {moves_ok}/{RUNS}, cell figure in the cell {cells_ok}/{RUNS},"
        f" distinct renderings {len(set(renderings))}",
    )
    if dispatch == "main":
        assert moves_ok == RUNS
        assert cells_ok == RUNS
        assert len(set(renderings)) == 1
