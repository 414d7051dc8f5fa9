"""Property test of the merge rule and the queue: nothing a page could see is merged away.

Random interleavings of state updates, event-style set-and-reset updates,
custom messages, closes and flushes on three widgets go through the real
sender (with its background thread) under a scripted budget; a model frontend
records every change event. For every trait that is not coalescible it must see
every value in order; every custom message must find the page in the state the
kernel had when it was sent; every message that is not a coalescible update
arrives in the order sent, across comms too; every widget ends in the kernel's
state; nothing of a comm arrives after its close.
"""

from __future__ import annotations

import typing as t

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel_comm_ext.delivery.sender import CommSender

from .sender_fakes import FakeKernel, ModelFrontend, ScriptedBudget, custom, update, widget

# (model module, model name, the traits that may merge)
MODELS = [
    ("@jupyter-widgets/controls", "IntSliderModel", {"value", "ping"}),
    ("jupyterlab-plotly", "FigureModel", set()),
    ("my-lib", "GaugeModel", {"value"}),
]

OPS = st.lists(
    st.tuples(
        st.sampled_from(["state", "event", "custom", "close", "flush"]),
        st.integers(0, len(MODELS) - 1),
        st.integers(0, 3),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=OPS,
    takes=st.lists(st.booleans(), max_size=8).map(lambda p: [*p, True]),
    owes=st.lists(st.booleans(), min_size=1, max_size=4),
)
def test_every_change_of_a_trait_that_is_not_coalescible_reaches_the_page(  # noqa: PLR0912 (a branch per operation)
    ops: list[tuple[str, int, int]], takes: list[bool], owes: list[bool]
) -> None:
    kernel = FakeKernel()
    sender = CommSender(kernel, rate_budget=1000.0, coalescible=["my-lib:GaugeModel.value"])
    sender._budget = ScriptedBudget(takes, owes)  # type: ignore[assignment]
    try:
        comms = [widget(kernel, sender, module, name) for module, name, _ in MODELS]
        state: list[dict[str, t.Any]] = [{} for _ in MODELS]
        # Every value the kernel set, per (widget, trait), dropping repeats (no change).
        sets: dict[tuple[int, str], list[t.Any]] = {}
        customs: list[list[tuple[int, dict[str, t.Any]]]] = [[] for _ in MODELS]
        closed: set[int] = set()
        # The messages that are not coalescible updates, in the order sent.
        ordered: list[tuple[t.Any, ...]] = []

        def kernel_sets(i: int, key: str, value: t.Any) -> None:
            if state[i].get(key, _UNSET) != value:
                sets.setdefault((i, key), []).append(value)
            state[i][key] = value

        for n, (op, i, value) in enumerate(ops):
            comm = comms[i]
            if op == "flush":
                sender.flush()
                continue
            if i in closed:
                continue
            coalescible = MODELS[i][2]
            if op == "state":
                update(comm, value=value)
                kernel_sets(i, "value", value)
                if "value" not in coalescible:
                    ordered.append((i, "value", value))
            elif op == "event":
                for v in (value, None):
                    update(comm, ping=v)
                    kernel_sets(i, "ping", v)
                    if "ping" not in coalescible:
                        ordered.append((i, "ping", v))
            elif op == "custom":
                custom(comm, n)
                customs[i].append((n, dict(state[i])))
                ordered.append((i, "custom", n))
            else:
                comm.close()
                closed.add(i)
                ordered.append((i, "close"))
        sender.configure(0)
        page = ModelFrontend(kernel)
        page.apply()

        assert _ordered_arrivals(page, [c.comm_id for c in comms]) == ordered
        assert page.after_close == []
        assert page.closed == {comms[i].comm_id for i in closed}
        for i, (_module, _name, coalescible) in enumerate(MODELS):
            comm_id = comms[i].comm_id
            model_state = {
                k: v for k, v in page.state[comm_id].items() if not k.startswith("_model")
            }
            assert model_state == state[i]
            for key in ("value", "ping"):
                if key not in coalescible:
                    assert page.changes.get((comm_id, key), []) == sets.get((i, key), []), key
            arrived = [
                (content, {k: v for k, v in seen.items() if not k.startswith("_model")})
                for content, seen in page.customs.get(comm_id, [])
            ]
            assert arrived == customs[i]
    finally:
        sender.close()


def _ordered_arrivals(page: ModelFrontend, comm_ids: list[str]) -> list[tuple[t.Any, ...]]:
    """The messages that are not coalescible updates, as the page received them."""
    index = {comm_id: i for i, comm_id in enumerate(comm_ids)}
    arrived: list[tuple[t.Any, ...]] = []
    for comm_id, msg_type, data in page.log:
        i = index[comm_id]
        if msg_type == "comm_close":
            arrived.append((i, "close"))
        elif msg_type == "comm_msg" and data["method"] == "custom":
            arrived.append((i, "custom", data["content"]))
        elif msg_type == "comm_msg":
            # A merged update may carry coalescible keys beside one that is not.
            arrived += [(i, key, v) for key, v in data["state"].items() if key not in MODELS[i][2]]
    return arrived


_UNSET = object()
