"""Flow control of comm traffic: waiting updates of ipywidgets' controls merge, nothing else does.

Real kernels with the extension loaded, read over ZMQ by tests/frontend.py.
A low ``rate_budget`` makes the budget run out early, so the rules show
with few messages (the IOPub socket drops past 1,000 queued messages, which
is another issue's business).
"""

from __future__ import annotations

import time
import typing as t
from pathlib import Path

import pytest

from .conftest import AUTOLOAD_OFF
from .frontend import Frontend, start_frontend
from .helpers import collection_storm, comm_magic

SETUP = """
import comm, dataclasses, time, ipywidgets
from IPython.display import display
manager = get_ipython().kernel.comm_manager
s = ipywidgets.IntSlider(min=-1, value=-1, max=10**6)  # every value below is a change
display(s)
"""


def _setup(fe: Frontend, rate_budget: float | None = None) -> str:
    if rate_budget is not None:
        fe.run(f"%config KernelCommManager.rate_budget = {rate_budget}")
    fe.run(SETUP)
    return t.cast(str, fe.eval("s.model_id"))


def _update_value(msg: dict[str, t.Any]) -> int | None:
    data = msg["content"]["data"]
    if data.get("method") != "update":
        return None
    return t.cast("int | None", data["state"].get("value"))


def _stats(fe: Frontend) -> dict[str, t.Any]:
    return t.cast(dict[str, t.Any], fe.eval("dataclasses.asdict(manager.delivery_stats())"))


def _is_idle(parent_id: str) -> t.Callable[[dict[str, t.Any]], bool]:
    return lambda m: (
        m["msg_type"] == "status"
        and m["parent_header"].get("msg_id") == parent_id
        and m["content"]["execution_state"] == "idle"
    )


def test_20000_slider_updates_end_on_the_last_value_with_far_fewer_messages(
    ext_kernel: Frontend,
) -> None:
    fe = ext_kernel
    slider = _setup(fe)  # the default budget
    before = _stats(fe)
    mark = fe.mark()
    execution = fe.execute(
        "start = time.monotonic()\n"
        "for i in range(20000): s.value = i\n"
        "print(time.monotonic() - start)",
        timeout=120,
    )
    took = float(execution.stdout)

    msgs = fe.iopub("comm_msg", comm_id=slider, since=mark)
    values = t.cast("list[int]", [_update_value(m) for m in msgs])
    assert None not in values
    assert values[-1] == 19999
    assert values == sorted(values)  # newer state never overtaken by older
    # Half a second of burst, then 500 a second, and the last state at the end.
    assert len(msgs) <= 250 + 500 * took + 5, f"{len(msgs)} messages in {took:.2f} s"
    assert len(msgs) < 10000
    after = _stats(fe)
    saved = after["coalesced"] - before["coalesced"]
    assert saved + len(msgs) == 20000  # every update was either sent or merged
    report = comm_magic(fe)
    assert "\n\nFlow control\nrate budget: 500 msg/s" in report
    assert f"widget updates coalesced (saved): {after['coalesced']}," in report
    assert all(m["parent_header"]["msg_id"] == execution.msg_id for m in msgs)
    # The last state went out before the cell's idle status.
    log = fe.iopub(since=mark)
    idle = next(i for i, m in enumerate(log) if _is_idle(execution.msg_id)(m))
    assert log.index(msgs[-1]) < idle


def test_other_messages_are_never_merged_and_keep_their_order(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    slider = _setup(fe, rate_budget=200)
    fe.run("c = comm.create_comm(target_name='custom')")
    custom = fe.eval("c.comm_id")
    mark = fe.mark()
    fe.execute("for i in range(1000):\n    s.value = i\n    c.send({'i': i})", timeout=60)

    received = [m["content"]["data"] for m in fe.iopub("comm_msg", comm_id=custom, since=mark)]
    assert received == [{"i": i} for i in range(1000)]
    values = [_update_value(m) for m in fe.iopub("comm_msg", comm_id=slider, since=mark)]
    assert values[-1] == 999
    assert len(values) < 1000  # the slider's updates were coalesced meanwhile


def test_a_held_update_goes_out_before_the_next_other_message_of_its_comm(
    ext_kernel: Frontend,
) -> None:
    fe = ext_kernel
    slider = _setup(fe, rate_budget=100)
    before = _stats(fe)
    mark = fe.mark()
    fe.execute(
        "for i in range(300):\n"
        "    s.value = i\n"
        "    if i % 10 == 9:\n"
        "        s.send({'after': i})\n"  # a custom message of the same comm
    )
    msgs = fe.iopub("comm_msg", comm_id=slider, since=mark)
    customs = 0
    last_value = None
    for msg in msgs:
        data = msg["content"]["data"]
        if data["method"] == "custom":
            # The frontend already has the state the kernel had when it sent this.
            assert last_value == data["content"]["after"]
            customs += 1
        else:
            last_value = _update_value(msg)
    assert customs == 30
    assert last_value == 299
    assert _stats(fe)["coalesced"] > before["coalesced"]  # updates really were held


def test_held_state_reaches_the_page_while_a_synchronous_cell_keeps_the_kernel_busy(
    ext_kernel: Frontend,
) -> None:
    fe = ext_kernel
    # One message a second: after the first update everything is held, and
    # only the flusher thread can send the last state while the cell spins.
    _setup(fe, rate_budget=1)
    fe.run("marker = comm.create_comm(target_name='marker')")
    mark = fe.mark()
    fe.execute(
        "for i in range(2000): s.value = i\n"
        "busy_until = time.monotonic() + 5\n"
        "while time.monotonic() < busy_until: pass\n"
        "marker.send({'spun': True})\n",  # another comm: sent at once, held updates stay
        timeout=60,
    )
    log = fe.iopub(since=mark)
    last = next(
        i for i, m in enumerate(log) if m["msg_type"] == "comm_msg" and _update_value(m) == 1999
    )
    spun = next(i for i, m in enumerate(log) if m["content"].get("data") == {"spun": True})
    assert last < spun, "the last state waited for the end of the cell"


def test_held_updates_are_sent_before_the_cell_ends(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    slider = _setup(fe, rate_budget=1)
    fe.run("s.value = 1")  # spends the one token
    mark = fe.mark()
    execution = fe.execute("s.value = 2\ns.value = 3\ns.value = 4")

    log = fe.iopub(since=mark)
    updates = [i for i, m in enumerate(log) if m["content"].get("comm_id") == slider]
    idle = next(i for i, m in enumerate(log) if _is_idle(execution.msg_id)(m))
    values = [_update_value(log[i]) for i in updates]
    # The budget may have refilled one token since the last cell: 2 may go at once.
    assert values in ([4], [2, 4])
    assert updates[-1] < idle


def test_settings_take_effect_at_run_time(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    slider = _setup(fe, rate_budget=100)

    for base, setting in [(1000, "coalesce_updates = False"), (2000, "rate_budget = 0")]:
        fe.run(f"%config KernelCommManager.{setting}")
        mark = fe.mark()
        fe.execute(f"for i in range({base}, {base + 500}): s.value = i")
        values = [_update_value(m) for m in fe.iopub("comm_msg", comm_id=slider, since=mark)]
        assert values == list(range(base, base + 500)), setting
        fe.run("%config KernelCommManager.coalesce_updates = True")
        fe.run("%config KernelCommManager.rate_budget = 100")

    bad = fe.execute("%config KernelCommManager.rate_budget = -5", allow_error=True)
    assert "rate_budget" in bad.stdout + bad.stderr + str(bad.errors)
    assert fe.eval("manager.rate_budget") == 100
    assert _stats(fe)["rate_budget"] == 100


def test_other_messages_wait_in_order_for_the_budget(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    _setup(fe, rate_budget=100)  # 50 messages of burst, 100 on credit, then 100 a second
    fe.run("c = comm.create_comm(target_name='custom')")
    custom = fe.eval("c.comm_id")
    mark = fe.mark()
    start = time.monotonic()
    fe.execute("for i in range(250): c.send({'i': i})")
    took = time.monotonic() - start

    received = [m["content"]["data"] for m in fe.iopub("comm_msg", comm_id=custom, since=mark)]
    assert received == [{"i": i} for i in range(250)]
    stats = _stats(fe)
    assert stats["waited"] >= 90
    assert stats["max_wait_seconds"] >= 0.7
    assert stats["waiting"] == 0  # all sent before the cell ended
    assert took >= 0.8  # 100 messages over burst and credit at 100 a second


def test_the_iopub_thread_never_waits_for_the_budget(ext_kernel: Frontend) -> None:
    """A comm closed on the IOPub thread is queued; that thread does not wait."""
    fe = ext_kernel
    _setup(fe, rate_budget=0.2)  # one message every five seconds once the burst is spent
    fe.run("c = comm.create_comm(target_name='custom')\nc.send({'spend': 'the burst'})")
    custom = fe.eval("c.comm_id")
    took = float(
        fe.run(
            "import threading\n"
            "iopub = get_ipython().kernel.iopub_thread\n"
            "done = threading.Event()\n"
            "start = time.monotonic()\n"
            "iopub.schedule(c.close)\n"
            "iopub.schedule(done.set)\n"
            "done.wait(30)\n"
            "print(time.monotonic() - start)"
        )
    )
    assert took < 2.0, f"the IOPub thread waited {took:.1f} s for the budget"
    assert len(fe.wait_for("comm_close", comm_id=custom)) == 1


def test_unloading_sends_what_is_held_and_reload_keeps_coalescing(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    slider = _setup(fe, rate_budget=1)
    fe.run("s.value = 1")
    mark = fe.mark()
    fe.run("s.value = 2\ns.value = 3\n%unload_ext kernel_comm_ext")
    values = [_update_value(m) for m in fe.iopub("comm_msg", comm_id=slider, since=mark)]
    assert values in ([3], [2, 3])

    # Loaded again, the slider made by the first load is coalesced by the new manager.
    fe.run("%load_ext kernel_comm_ext\nmanager = get_ipython().kernel.comm_manager")
    fe.run("%config KernelCommManager.rate_budget = 100")
    mark = fe.mark()
    fe.execute("for i in range(1000): s.value = i")
    values = [_update_value(m) for m in fe.iopub("comm_msg", comm_id=slider, since=mark)]
    assert values[-1] == 999
    assert len(values) < 1000


def test_a_comm_collected_while_updates_are_held_closes_without_deadlock(
    ext_kernel: Frontend,
) -> None:
    fe = ext_kernel
    slider = _setup(fe, rate_budget=50)
    mark = fe.mark()
    # A comm nothing else refers to is closed by the garbage collector
    # (BaseComm.__del__); in a reference cycle that happens at any allocation,
    # also while the sender holds its lock.
    fe.execute(collection_storm("comm.create_comm(target_name='doomed')"), timeout=60)
    values = [_update_value(m) for m in fe.iopub("comm_msg", comm_id=slider, since=mark)]
    assert values[-1] == 2999
    assert len(fe.iopub("comm_close", since=mark)) == 300
    assert fe.kernel_info()["status"] == "ok"


def test_settings_from_ipython_kernel_config(tmp_path: Path) -> None:
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        "c.KernelCommManager.rate_budget = 42.5\n"
        "c.KernelCommManager.coalesce_updates = False\n"
        "c.KernelCommManager.queue_messages = 77\n"
        "c.KernelCommManager.queue_bytes = 1234\n"
        "c.KernelCommManager.coalescible_models = ['my-lib:GaugeModel.value']\n"
        "c.KernelCommManager.pace_messages = True\n"
    )
    fe = start_frontend(tmp_path, env={**AUTOLOAD_OFF, "IPYTHONDIR": str(tmp_path / "ipython")})
    try:
        fe.run("%load_ext kernel_comm_ext")
        _setup(fe)
        stats = _stats(fe)
        assert (
            stats["rate_budget"],
            stats["coalesce_updates"],
            stats["max_messages"],
            stats["max_bytes"],
        ) == (42.5, False, 77, 1234)
        assert fe.eval("manager.coalescible_models") == ["my-lib:GaugeModel.value"]
        assert "pace_messages is deprecated" in fe.kernel_log()
    finally:
        fe.shutdown()


@pytest.mark.parametrize(
    "waiting",
    [
        pytest.param("for i in range(50): s.value = i", id="merging-updates-wait"),
        pytest.param("for i in range(10): w.run(i)", id="ordered-messages-wait"),
    ],
)
def test_output_widget_capture_is_never_held_behind_its_output(
    ext_kernel: Frontend, waiting: str
) -> None:
    """Over budget, ``with out: print()`` still tells the page to capture before printing.

    And to stop capturing before anything printed after the block, even while
    messages of other widgets wait that must keep their order.
    """
    fe = ext_kernel
    _setup(fe, rate_budget=5)
    fe.run(EVENT_WIDGET)
    fe.run("out = ipywidgets.Output(); display(out)")
    output_id = fe.eval("out.model_id")
    mark = fe.mark()
    execution = fe.execute(f"{waiting}\nwith out:\n    print('captured')\nprint('after')")
    msgs = fe.iopub(parent_id=execution.msg_id, since=mark)
    kinds = [
        ("capture", m["content"]["data"]["state"]["msg_id"])
        if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == output_id
        else ("print", m["content"]["text"])
        if m["msg_type"] == "stream"
        else None
        for m in msgs
    ]
    kinds = [k for k in kinds if k is not None]
    assert kinds == [
        ("capture", execution.msg_id),
        ("print", "captured\n"),
        ("capture", ""),
        ("print", "after\n"),
    ]
    assert _stats(fe)["waited"] > 0, "the budget was spent"


EVENT_WIDGET = """
import traitlets
class Commands(ipywidgets.DOMWidget):
    # As plotly's FigureWidget: each edit sets a synced trait and resets it at once.
    _model_module = traitlets.Unicode("my-lib").tag(sync=True)
    _model_name = traitlets.Unicode("CommandsModel").tag(sync=True)
    command = traitlets.Any(None, allow_none=True).tag(sync=True)
    level = traitlets.Int(0).tag(sync=True)
    def run(self, i):
        self.command = {"i": i}
        self.command = None
w = Commands()
"""


def test_set_and_reset_traits_of_other_widgets_all_reach_the_page_in_order(
    ext_kernel: Frontend,
) -> None:
    fe = ext_kernel
    _setup(fe, rate_budget=200)
    fe.run(EVENT_WIDGET)
    widget = fe.eval("w.model_id")
    mark = fe.mark()
    fe.execute("for i in range(1000):\n    w.run(i)\n    s.value = i", timeout=120)

    commands = [
        m["content"]["data"]["state"]["command"]
        for m in fe.iopub("comm_msg", comm_id=widget, since=mark)
        if "command" in m["content"]["data"].get("state", {})
    ]
    expected: list[t.Any] = []
    for i in range(1000):
        expected += [{"i": i}, None]
    assert commands == expected  # every edit and every reset, in order
    stats = _stats(fe)
    assert stats["coalesced"] > 0  # the slider's updates merged meanwhile
    [row] = [c for c in stats["comms"] if c["comm_id"] == widget]
    assert (row["model"], row["coalescible"], row["merged"]) == ("CommandsModel", "no", 0)
    assert row["waited"] > 0

    # Declared coalescible, its level trait merges; its command trait still does not.
    fe.run("%config KernelCommManager.coalescible_models = ['my-lib:CommandsModel.level']")
    mark = fe.mark()
    fe.execute("for i in range(1000):\n    w.level = i + 1\nw.run(-1)", timeout=120)
    msgs = fe.iopub("comm_msg", comm_id=widget, since=mark)
    levels = [m["content"]["data"]["state"].get("level") for m in msgs]
    assert levels[-3:] == [1000, None, None]  # the last level, then the edit and its reset
    assert len(msgs) < 1000
    bad = fe.execute("%config KernelCommManager.coalescible_models = ['Nope']", allow_error=True)
    assert "module:ModelName" in bad.stdout + bad.stderr + str(bad.errors)
