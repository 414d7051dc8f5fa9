"""The widget manager model the server tests, the demo and W7 judge pages by.

Fast checks of ``kernel_comm_ext.testing.widget_frontend`` on hand-written
messages (the shapes ipywidgets and plotly send, as seen on a real kernel).
"""

from __future__ import annotations

import typing as t

from kernel_comm_ext.testing.widget_frontend import WidgetFrontend


def _open(comm_id: str, state: dict[str, t.Any], paths: list[list[t.Any]] | None = None) -> t.Any:
    data = {"state": state, "buffer_paths": paths or []}
    return {"comm_id": comm_id, "target_name": "jupyter.widget", "data": data}


def _update(comm_id: str, state: dict[str, t.Any], paths: list[list[t.Any]] | None = None) -> t.Any:
    data = {"method": "update", "state": state, "buffer_paths": paths or []}
    return {"comm_id": comm_id, "data": data}


def test_change_events_only_for_values_that_change() -> None:
    page = WidgetFrontend()
    page.apply("comm_open", _open("s", {"_model_name": "IntSliderModel", "value": 0}))
    for value in (1, 1, 2, 2, 3):
        page.apply("comm_msg", _update("s", {"value": value}))
    page.apply("comm_msg", {"comm_id": "s", "data": {"method": "custom", "content": {}}})
    page.apply("comm_msg", _update("unknown", {"value": 9}))
    (slider,) = page.find("IntSliderModel")
    assert slider.values("value") == [1, 2, 3]
    assert slider.state["value"] == 3
    page.apply("comm_close", {"comm_id": "s", "data": {}})
    assert slider.closed


def test_buffers_go_back_at_their_paths() -> None:
    page = WidgetFrontend()
    page.apply(
        "comm_open",
        _open("w", {"_model_name": "M", "arr": {"shape": [2]}}, [["arr", "value"]]),
        [b"ab"],
    )
    page.apply("comm_msg", _update("w", {"data": [None, 1]}, [["data", 0], ["img"]]), [b"x", b"y"])
    state = page.models["w"].state
    assert state["arr"] == {"shape": [2], "value": b"ab"}
    assert state["data"] == [b"x", 1]
    assert state["img"] == b"y"


def _figure_open(comm_id: str) -> t.Any:
    state = {
        "_model_name": "AnyModel",
        "_anywidget_id": "plotly.graph_objs._figurewidget.FigureWidget",
        "_widget_data": [],
        "_py2js_restyle": {},
    }
    return _open(comm_id, state)


def _restyle(comm_id: str, data: dict[str, t.Any], traces: list[int], edit: int) -> list[t.Any]:
    msg = {"restyle_data": data, "restyle_traces": traces, "trace_edit_id": edit}
    return [_update(comm_id, {"_py2js_restyle": msg}), _update(comm_id, {"_py2js_restyle": None})]


def test_plotly_figure_applies_every_restyle_as_plotly_does() -> None:
    page = WidgetFrontend()
    page.apply("comm_open", _figure_open("f"))
    page.apply("comm_open", _open("other", {"_model_name": "AnyModel", "_anywidget_id": "x.Y"}))
    traces = [{"type": "scatter", "y": [0]}, {"type": "bar", "y": [0]}]
    page.apply("comm_msg", _update("f", {"_widget_data": traces}))
    msgs = [
        *_restyle("f", {"y": [[1, 2], [3]]}, [0, 1], 1),
        *_restyle("f", {"marker.color": "red"}, [1], 2),
        *_restyle("f", {"name": ["a"]}, [0, 1], 3),  # a list value cycles over the traces
    ]
    for msg in msgs:
        page.apply("comm_msg", msg)
    (figure,) = page.figures()
    assert [r["trace_edit_id"] for r in figure.restyles] == [1, 2, 3]
    assert figure.traces == [
        {"type": "scatter", "y": [1, 2], "name": "a"},
        {"type": "bar", "y": [3], "marker": {"color": "red"}, "name": "a"},
    ]


def test_a_merged_edit_and_reset_draws_nothing() -> None:
    # What merging by key makes of edit + reset: one update whose restyle is None.
    page = WidgetFrontend()
    page.apply("comm_open", _figure_open("f"))
    page.apply("comm_msg", _update("f", {"_widget_data": [{"y": [0]}]}))
    page.apply("comm_msg", _update("f", {"_py2js_restyle": None}))
    (figure,) = page.figures()
    assert figure.restyles == []
    assert figure.traces == [{"y": [0]}]
