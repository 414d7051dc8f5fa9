"""Merge rules of held ipywidgets updates (kernel_comm_ext/kernel/widget_updates.py).

The reference is the frontend: applying the merged update must leave a
widget model in the same state as applying each update in turn. Messages are
made by ipywidgets' own ``_remove_buffers``, as ``Widget.send_state`` does.
"""

from __future__ import annotations

import copy
import typing as t

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ipywidgets.widgets.widget import _remove_buffers

from kernel_comm_ext.delivery.widget_updates import WidgetUpdate

PARENT = {"header": {"msg_id": "cell-1"}}


def update_message(
    state: dict[str, t.Any], parent: t.Any = PARENT, metadata: t.Any = None
) -> tuple[dict[str, t.Any], list[memoryview] | None]:
    """The (content, buffers) ipywidgets sends for ``state``."""
    wire_state, paths, buffers = _remove_buffers(state)
    content = {
        "comm_id": "c1",
        "data": {"method": "update", "state": wire_state, "buffer_paths": paths},
    }
    return content, [memoryview(b) for b in buffers] or None


def parse(state: dict[str, t.Any], parent: t.Any = PARENT, metadata: t.Any = None) -> WidgetUpdate:
    content, buffers = update_message(state)
    update = WidgetUpdate.parse("comm_msg", content, metadata or {}, parent, buffers)
    assert update is not None
    return update


def apply_on_frontend(
    model: dict[str, t.Any], content: dict[str, t.Any], buffers: list[memoryview] | None
) -> None:
    """What the page does with an update: put the buffers into the state, set the keys."""
    state = copy.deepcopy(content["data"]["state"])
    for path, buf in zip(content["data"]["buffer_paths"], buffers or [], strict=True):
        target = state
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = bytes(buf)
    model.update(state)


def as_plain(value: t.Any) -> t.Any:
    """``value`` with buffers as bytes and tuples as lists, as the page holds it."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, dict):
        return {k: as_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_plain(v) for v in value]
    return value


def test_newer_values_win_and_other_keys_stay() -> None:
    first = parse({"value": 1, "description": "a"})
    first.merge(parse({"value": 2}))
    first.merge(parse({"value": 3, "disabled": True}))
    content, buffers = first.message()
    assert content["data"] == {
        "method": "update",
        "state": {"value": 3, "description": "a", "disabled": True},
        "buffer_paths": [],
    }
    assert buffers is None
    assert content["comm_id"] == "c1"
    assert first.merged == 2


def test_newest_parent_and_metadata_are_kept() -> None:
    first = parse({"value": 1}, parent={"header": {"msg_id": "a"}}, metadata={"v": 1})
    first.merge(parse({"value": 2}, parent={"header": {"msg_id": "b"}}, metadata={"v": 2}))
    assert first.parent == {"header": {"msg_id": "b"}}
    assert first.metadata == {"v": 2}


def test_a_key_set_again_drops_its_older_buffers() -> None:
    first = parse({"image": b"old", "data": {"x": b"x-old", "shape": [2]}, "keep": [b"k0", 1]})
    first.merge(parse({"image": b"new", "data": {"shape": [3]}}))
    content, buffers = first.message()
    pairs = dict(
        zip(
            (tuple(p) for p in content["data"]["buffer_paths"]),
            (bytes(b) for b in buffers or []),
            strict=True,
        )
    )
    # "keep" is only in the older update: its buffer stays; "data" was replaced
    # by a value without buffers: x-old is gone; "image" has the newer buffer.
    assert pairs == {("keep", 0): b"k0", ("image",): b"new"}
    assert content["data"]["state"] == {"data": {"shape": [3]}, "keep": [None, 1]}


def test_a_key_that_becomes_a_buffer_drops_its_older_value() -> None:
    first = parse({"value": {"plain": 1}})
    first.merge(parse({"value": b"raw"}))
    content, buffers = first.message()
    assert content["data"]["state"] == {}
    assert content["data"]["buffer_paths"] == [["value"]]
    assert [bytes(b) for b in buffers or []] == [b"raw"]


def test_the_callers_state_is_not_changed() -> None:
    content, buffers = update_message({"value": 1})
    update = WidgetUpdate.parse("comm_msg", content, {}, PARENT, buffers)
    assert update is not None
    update.merge(parse({"value": 2}))
    assert content["data"]["state"] == {"value": 1}


@pytest.mark.parametrize(
    ("msg_type", "data", "nbuffers"),
    [
        ("comm_open", {"method": "update", "state": {}, "buffer_paths": []}, 0),
        ("comm_close", {"method": "update", "state": {}, "buffer_paths": []}, 0),
        ("comm_msg", {"method": "custom", "content": {}}, 0),
        ("comm_msg", {"method": "echo_update", "state": {"value": 1}, "buffer_paths": []}, 0),
        ("comm_msg", {"method": "request_state"}, 0),
        ("comm_msg", {"state": {"value": 1}}, 0),
        ("comm_msg", {"method": "update", "state": [1]}, 0),
        ("comm_msg", {"method": "update", "state": {}, "buffer_paths": [["a"]]}, 0),
        ("comm_msg", {"method": "update", "state": {}, "buffer_paths": []}, 1),
        ("comm_msg", {"method": "update", "state": {}, "buffer_paths": [[]]}, 1),
        ("comm_msg", {"method": "update", "state": {}, "buffer_paths": [[0]]}, 1),
        ("comm_msg", {"method": "update", "state": {}, "buffer_paths": "a"}, 1),
        ("comm_msg", ["update"], 0),
        ("comm_msg", None, 0),
    ],
)
def test_anything_but_a_well_formed_update_is_not_merged(
    msg_type: str, data: t.Any, nbuffers: int
) -> None:
    buffers = [memoryview(b"x")] * nbuffers or None
    content = {"comm_id": "c1", "data": data}
    assert WidgetUpdate.parse(msg_type, content, {}, PARENT, buffers) is None


def test_an_update_without_buffer_paths_is_merged() -> None:
    content = {"comm_id": "c1", "data": {"method": "update", "state": {"value": 1}}}
    update = WidgetUpdate.parse("comm_msg", content, {}, PARENT, None)
    assert update is not None
    assert update.message()[0]["data"]["buffer_paths"] == []


# Property: merging never changes what the page ends with.

KEYS = st.sampled_from(["value", "image", "data", "layout", "label"])
LEAF = st.one_of(st.integers(-3, 3), st.text(max_size=3), st.binary(min_size=1, max_size=4))
VALUE = st.one_of(
    LEAF,
    st.lists(LEAF, max_size=3),
    st.dictionaries(st.sampled_from(["x", "y", "shape"]), LEAF, max_size=3),
)
STATES = st.lists(st.dictionaries(KEYS, VALUE, max_size=4), min_size=1, max_size=6)


# The machine is shared with other test runs: no timing health checks.
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STATES)
def test_merged_update_leaves_the_page_as_each_update_in_turn(
    states: list[dict[str, t.Any]],
) -> None:
    one_by_one: dict[str, t.Any] = {}
    for state in states:
        apply_on_frontend(one_by_one, *update_message(state))

    merged = parse(states[0])
    for state in states[1:]:
        merged.merge(parse(state))
    content, buffers = merged.message()
    assert len(content["data"]["buffer_paths"]) == len(buffers or [])
    at_once: dict[str, t.Any] = {}
    apply_on_frontend(at_once, content, buffers)

    assert as_plain(at_once) == as_plain(one_by_one)
    assert merged.merged == len(states) - 1
