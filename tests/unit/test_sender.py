"""The sender's merge rule and queue, against small fakes (no kernel): fast unit tests.

A scripted budget decides what is over budget, a recording socket keeps what
goes out, and a model frontend applies it as a widget manager does.
"""

from __future__ import annotations

import gc
import signal
import threading
import time
import typing as t

import pytest

from kernel_comm_ext.delivery.coalescible import BadRule, parse_rules
from kernel_comm_ext.delivery.sender import CommSender
from kernel_comm_ext.delivery.stats import model_label
from kernel_comm_ext.kernel.comm import KernelComm

from .sender_fakes import FakeKernel, ModelFrontend, ScriptedBudget, custom, update, widget

CONTROLS = "@jupyter-widgets/controls"


def _sender(
    kernel: FakeKernel, budget: ScriptedBudget | None = None, **settings: t.Any
) -> CommSender:
    sender = CommSender(kernel, rate_budget=1000.0, **settings)
    sender._budget = budget or ScriptedBudget()  # type: ignore[assignment]
    return sender


@pytest.fixture
def kernel() -> FakeKernel:
    return FakeKernel()


def test_waiting_updates_of_a_control_merge_and_the_page_ends_on_the_last(
    kernel: FakeKernel,
) -> None:
    sender = _sender(kernel)
    slider = widget(kernel, sender, CONTROLS, "IntSliderModel")
    for i in range(100):
        update(slider, value=i)
    page = ModelFrontend(kernel)
    sender.configure(0)  # no budget: what waits goes out at once
    page.apply()
    assert page.state[slider.comm_id]["value"] == 99
    assert page.msg_types.count("comm_msg") == 1
    stats = sender.stats([slider])
    assert stats.coalesced == 99
    assert stats.comms[0].model == "IntSlider"
    assert stats.comms[0].merged == 99
    sender.close()


def test_set_and_reset_updates_of_other_models_all_arrive_in_order(kernel: FakeKernel) -> None:
    """plotly's FigureWidget sets a trait to an edit and back to None at once, per edit."""
    sender = _sender(kernel)
    figure = widget(kernel, sender, "jupyterlab-plotly", "FigureModel")
    for i in range(50):
        update(figure, _py2js_restyle={"y": [i]})
        update(figure, _py2js_restyle=None)
    assert sender.stats().waiting == 100
    sender.configure(0)
    page = ModelFrontend(kernel)
    page.apply()
    expected: list[t.Any] = []
    for i in range(50):
        expected += [{"y": [i]}, None]
    assert page.changes[(figure.comm_id, "_py2js_restyle")] == expected
    assert sender.stats().coalesced == 0
    sender.close()


def test_a_comm_whose_model_is_unknown_is_never_merged(kernel: FakeKernel) -> None:
    sender = _sender(kernel)
    unknown = widget(kernel, sender, None, None)
    adopted = KernelComm(kernel=kernel, sender=sender, primary=False)  # no comm_open seen
    for i in range(10):
        update(unknown, value=i)
        update(adopted, value=i)
    sender.configure(0)
    page = ModelFrontend(kernel)
    page.apply()
    assert page.changes[(unknown.comm_id, "value")] == list(range(10))
    assert page.changes[(adopted.comm_id, "value")] == list(range(10))
    sender.close()


def test_the_output_widget_is_not_merged(kernel: FakeKernel) -> None:
    sender = _sender(kernel)
    out = widget(kernel, sender, "@jupyter-widgets/output", "OutputModel")
    update(out, msg_id="cell-1")
    update(out, msg_id="")
    sender.configure(0)
    page = ModelFrontend(kernel)
    page.apply()
    assert page.changes[(out.comm_id, "msg_id")] == ["cell-1", ""]
    sender.close()


def test_a_declared_trait_merges_and_the_others_of_its_model_do_not(kernel: FakeKernel) -> None:
    sender = _sender(kernel, coalescible=["my-lib:GaugeModel.value"])
    gauge = widget(kernel, sender, "my-lib", "GaugeModel")
    for i in range(5):
        update(gauge, value=i)
        update(gauge, value=i + 100)
        update(gauge, ping=i)
        update(gauge, ping=None)
    sender.configure(0)
    page = ModelFrontend(kernel)
    page.apply()
    pings: list[t.Any] = []
    for i in range(5):
        pings += [i, None]
    assert page.changes[(gauge.comm_id, "ping")] == pings
    assert page.changes[(gauge.comm_id, "value")] == [100, 101, 102, 103, 104]
    assert page.state[gauge.comm_id]["value"] == 104
    stats = sender.stats([gauge])
    assert stats.comms[0].coalescible == "value"
    # The first value waits; each later one merges into the comm's last waiting
    # update, also one that resets ping (ping is not set again by the merge).
    assert stats.coalesced == 9
    sender.close()


def test_a_custom_message_is_never_overtaken_by_its_own_waiting_update(
    kernel: FakeKernel,
) -> None:
    sender = _sender(kernel)
    slider = widget(kernel, sender, CONTROLS, "IntSliderModel")
    for i in range(30):
        update(slider, value=i)
        if i % 10 == 9:
            custom(slider, {"after": i})
    sender.configure(0)
    page = ModelFrontend(kernel)
    page.apply()
    assert [(c["after"], seen["value"]) for c, seen in page.customs[slider.comm_id]] == [
        (9, 9),
        (19, 19),
        (29, 29),
    ]
    sender.close()


def test_another_comm_goes_out_on_credit_while_one_waits(kernel: FakeKernel) -> None:
    sender = _sender(kernel, ScriptedBudget(owe_pattern=(True,)))
    slider = widget(kernel, sender, CONTROLS, "IntSliderModel")
    other = widget(kernel, sender, "jupyterlab-plotly", "FigureModel")
    page = ModelFrontend(kernel)
    page.apply()
    update(slider, value=1)  # waits (may merge later)
    update(other, x=1)  # nothing of its comm waits: out at once, on credit
    page.apply()
    assert page.changes == {(other.comm_id, "x"): [1]}
    update(slider, value=2)
    custom(slider, "now")  # its comm has an update waiting: waits behind it
    page.apply()
    assert slider.comm_id not in page.customs
    sender.configure(0)
    page.apply()
    [(content, seen)] = page.customs[slider.comm_id]
    assert (content, seen["value"]) == ("now", 2)
    assert sender.stats().owed == 1
    sender.close()


def test_nothing_overtakes_a_waiting_message_of_another_comm_that_is_not_coalescible(
    kernel: FakeKernel,
) -> None:
    """A thread's messages keep their order across comms (only waiting state may move)."""
    sender = _sender(kernel, ScriptedBudget(owe_pattern=(True,)))
    first = widget(kernel, sender, "jupyterlab-plotly", "FigureModel")
    second = widget(kernel, sender, "jupyterlab-plotly", "FigureModel")
    update(first, x=1)  # on credit
    custom(first, "a")  # on credit
    page = ModelFrontend(kernel)
    page.apply()
    assert sender.stats().owed == 2
    sender._budget = ScriptedBudget()  # type: ignore[assignment]  # no credit any more
    custom(first, "b")  # waits
    sender._budget = ScriptedBudget(owe_pattern=(True,))  # type: ignore[assignment]
    custom(second, "c")  # credit again, but "b" waits: waits behind it
    assert sender.stats().waiting == 2
    sender.configure(0)
    page.apply()
    assert [(c, msg) for c, msg, _ in page.log[2:]] == [
        (first.comm_id, "comm_msg"),
        (first.comm_id, "comm_msg"),
        (first.comm_id, "comm_msg"),
        (second.comm_id, "comm_msg"),
    ]
    assert [data["content"] for _, _, data in page.log[3:]] == ["a", "b", "c"]
    sender.close()


def test_a_close_waits_behind_its_comms_messages(kernel: FakeKernel) -> None:
    sender = _sender(kernel)
    figure = widget(kernel, sender, "jupyterlab-plotly", "FigureModel")
    update(figure, a=1)
    figure.close()
    sender.configure(0)
    page = ModelFrontend(kernel)
    page.apply()
    assert page.msg_types == ["comm_open", "comm_msg", "comm_close"]
    sender.close()


def test_the_background_thread_sends_what_waits_when_the_budget_allows(
    kernel: FakeKernel,
) -> None:
    sender = _sender(kernel, ScriptedBudget(pattern=(False,) * 5 + (True,)))
    figure = widget(kernel, sender, "jupyterlab-plotly", "FigureModel")
    for i in range(20):
        update(figure, x=i)
    deadline = time.monotonic() + 10
    while sender.stats().waiting and time.monotonic() < deadline:
        time.sleep(0.01)
    page = ModelFrontend(kernel)
    page.apply()
    assert page.changes[(figure.comm_id, "x")] == list(range(20))
    stats = sender.stats([figure])
    assert stats.waited >= 19
    assert stats.largest_queue >= 10
    assert stats.comms[0].largest_queue == stats.largest_queue
    sender.close()


def test_past_the_cap_the_sender_is_held_back_and_an_interrupt_ends_the_wait(
    kernel: FakeKernel,
) -> None:
    sender = _sender(kernel, max_messages=10)
    figure = widget(kernel, sender, "jupyterlab-plotly", "FigureModel")
    for i in range(10):
        update(figure, x=i)  # at the cap, not past it
    assert sender.stats().held_back == 0
    timer = threading.Timer(
        0.3, lambda: signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
    )
    timer.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        update(figure, x=10)  # the budget never allows: only ^C ends this
    assert time.monotonic() - start >= 0.25
    stats = sender.stats()
    assert stats.held_back == 1
    assert stats.waiting == 11  # the message that was held back waits, nothing is lost
    # Just after an interrupt nothing waits, so the cell's error goes out.
    update(figure, x=11)
    sender.flush()
    sender.configure(0)
    page = ModelFrontend(kernel)
    page.apply()
    assert page.changes[(figure.comm_id, "x")] == list(range(12))
    sender.close()


def test_a_collected_comm_is_closed_by_the_sender_not_by_its_finalizer(
    kernel: FakeKernel,
) -> None:
    sender = _sender(kernel, ScriptedBudget(pattern=(True,)))
    page = ModelFrontend(kernel)

    class Cycle:
        def __init__(self) -> None:
            self.me = self
            self.comm = widget(kernel, sender, "jupyterlab-plotly", "FigureModel")

    doomed = Cycle().comm.comm_id
    gc.collect()
    page.apply()
    assert page.closed == set(), "the finalizer sent the comm_close itself"
    sender.flush()
    page.apply()
    assert page.closed == {doomed}
    assert sender.stats().collected_closes == 1
    sender.close()


def test_many_collected_comms_are_all_closed_at_the_next_send(kernel: FakeKernel) -> None:
    """Each close goes through ``send``, which must not start closing the others again."""
    sender = _sender(kernel, ScriptedBudget(pattern=(True,)))
    page = ModelFrontend(kernel)
    slider = widget(kernel, sender, CONTROLS, "IntSliderModel")

    class Cycle:
        def __init__(self) -> None:
            self.me = self
            self.comm = widget(kernel, sender, "jupyterlab-plotly", "FigureModel")

    gc.disable()  # all of them found by one collection
    try:
        doomed = {Cycle().comm.comm_id for _ in range(2000)}
    finally:
        gc.enable()
    gc.collect()
    update(slider, value=1)
    page.apply()
    assert doomed <= page.closed
    stats = sender.stats()
    assert (stats.collected_closes, stats.errors) == (2000, 0)
    sender.close()


OUTPUT = ("@jupyter-widgets/output", "OutputModel")


def test_an_output_capture_goes_out_past_other_comms_waiting(kernel: FakeKernel) -> None:
    """The output printed next goes to IOPub at once: the page must be capturing by then."""
    sender = _sender(kernel, ScriptedBudget(pattern=(False,)))
    page = ModelFrontend(kernel)
    figure = widget(kernel, sender, "jupyterlab-plotly", "FigureModel")
    out = widget(kernel, sender, *OUTPUT)
    for i in range(3):
        custom(figure, i)
    update(out, msg_id="cell-1")
    page.apply()
    assert page.state[out.comm_id]["msg_id"] == "cell-1"
    assert figure.comm_id not in page.customs, "the figure's messages still wait"
    sender.configure(0)
    page.apply()
    assert [c for c, _ in page.customs[figure.comm_id]] == [0, 1, 2]
    sender.close()


def test_an_output_capture_behind_its_own_comm_waits_until_sent(kernel: FakeKernel) -> None:
    sender = _sender(kernel, ScriptedBudget(pattern=(False, False, False, True)))
    page = ModelFrontend(kernel)
    out = widget(kernel, sender, *OUTPUT)
    custom(out, "first")
    update(out, msg_id="cell-1")  # returns once sent, its comm's message before it
    page.apply()
    assert [(comm_id, kind) for comm_id, kind, _ in page.log[-2:]] == [
        (out.comm_id, "comm_msg"),
        (out.comm_id, "comm_msg"),
    ]
    assert [c for c, _ in page.customs[out.comm_id]] == ["first"]
    assert page.state[out.comm_id]["msg_id"] == "cell-1"
    sender.close()


def test_coalescible_entries_are_checked() -> None:
    rules = parse_rules(["@my/lib:GaugeModel", "other:DialModel.angle", "other:DialModel.size"])
    assert rules[("@my/lib", "GaugeModel")] == frozenset({"*"})
    assert rules[("other", "DialModel")] == frozenset({"angle", "size"})
    assert (CONTROLS, "IntSliderModel") in rules
    grid = rules[("ipydatagrid", "DataGridModel")]
    assert "base_row_size" in grid
    assert not {"_data", "_transforms", "selections"} & grid
    assert ("@jupyter-widgets/output", "OutputModel") not in rules
    for bad in ["GaugeModel", ":GaugeModel", "lib:", "lib:.trait"]:
        with pytest.raises(BadRule, match="module:ModelName"):
            parse_rules([bad])


def test_model_labels() -> None:
    assert model_label((CONTROLS, "IntSliderModel")) == "IntSlider"
    assert model_label(("@jupyter-widgets/base", "LayoutModel")) == "Layout"
    assert model_label(("jupyterlab-plotly", "FigureModel")) == "FigureModel"
    assert model_label(None) is None


def test_merged_buffers_are_counted_once(kernel: FakeKernel) -> None:
    sender = _sender(kernel)
    image = widget(kernel, sender, CONTROLS, "ImageModel")
    for size in (100, 300, 200):
        image.send(
            {"method": "update", "state": {}, "buffer_paths": [["value"]]},
            buffers=[b"x" * size],
        )
    stats = sender.stats()
    assert (stats.waiting, stats.waiting_bytes, stats.coalesced) == (1, 200, 2)
    sender.configure(0)
    assert sender.stats().waiting_bytes == 0
    sender.close()
