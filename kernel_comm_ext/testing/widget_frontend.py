"""A widget manager's view of a kernel's widget messages, and a model of plotly's figure.

``WidgetFrontend.apply`` takes the IOPub messages of a kernel in the order a
frontend receives them. Like the JavaScript widget manager of JupyterLab, it
keeps one model per widget comm (state from ``comm_open``, ``update`` and
``echo_update`` messages, binary buffers put back at their paths) and fires a
change event for every key whose value differs from the model's; every event
is recorded. ``PlotlyFigure`` follows a ``FigureWidget``'s model as plotly's
JavaScript does: its own copy of the traces (``_widget_data``), edited by
every restyle the kernel sends through ``_py2js_restyle``.
"""

from __future__ import annotations

import copy
import dataclasses
import typing as t

Message = t.Mapping[str, t.Any]
WIDGET_TARGET = "jupyter.widget"


@dataclasses.dataclass
class WidgetModel:
    """One widget as the page holds it."""

    comm_id: str
    model_name: str
    state: dict[str, t.Any]
    #: The state ``comm_open`` carried.
    opened: dict[str, t.Any] = dataclasses.field(default_factory=dict)
    #: Every change event, in order: (key, new value).
    changes: list[tuple[str, t.Any]] = dataclasses.field(default_factory=list)
    closed: bool = False
    observers: list[t.Callable[[str, t.Any], None]] = dataclasses.field(default_factory=list)

    def values(self, key: str) -> list[t.Any]:
        """Every value ``key`` changed to, in order."""
        return [value for changed, value in self.changes if changed == key]

    def set_state(self, state: t.Mapping[str, t.Any]) -> None:
        """Apply a state update; fire a change event for each key whose value changes."""
        changed = [(k, v) for k, v in state.items() if k not in self.state or self.state[k] != v]
        self.state.update(state)
        for key, value in changed:
            self.changes.append((key, value))
            for observer in self.observers:
                observer(key, value)


class WidgetFrontend:
    """The widget models of one page, built from the messages the kernel published."""

    def __init__(self) -> None:
        self.models: dict[str, WidgetModel] = {}
        #: Widget messages applied (comm_open, comm_msg, comm_close).
        self.applied = 0

    def apply(self, msg_type: str, content: Message, buffers: t.Sequence[bytes] = ()) -> None:
        """Apply one IOPub message; anything that is not about a widget is ignored."""
        comm_id = content.get("comm_id")
        if msg_type == "comm_open" and content.get("target_name") == WIDGET_TARGET:
            data = content.get("data") or {}
            state = _with_buffers(data.get("state", {}), data.get("buffer_paths", []), buffers)
            name = str(state.get("_model_name", ""))
            self.models[str(comm_id)] = WidgetModel(str(comm_id), name, state, copy.deepcopy(state))
            self.applied += 1
        elif msg_type == "comm_msg" and comm_id in self.models:
            data = content.get("data") or {}
            if data.get("method") in ("update", "echo_update"):
                state = _with_buffers(data.get("state", {}), data.get("buffer_paths", []), buffers)
                self.models[str(comm_id)].set_state(state)
            self.applied += 1
        elif msg_type == "comm_close" and comm_id in self.models:
            self.models[str(comm_id)].closed = True
            self.applied += 1

    def apply_all(self, messages: t.Iterable[Message]) -> None:
        """Apply messages shaped as ``{"msg_type", "content", "buffers"}``, in order."""
        for msg in messages:
            self.apply(msg["msg_type"], msg["content"], msg.get("buffers") or ())

    def find(self, model_name: str) -> list[WidgetModel]:
        """The models of that ``_model_name``, oldest first."""
        return [m for m in self.models.values() if m.model_name == model_name]

    def figures(self) -> list[PlotlyFigure]:
        """A ``PlotlyFigure`` for each plotly ``FigureWidget`` on the page, oldest first."""
        return [
            PlotlyFigure(m)
            for m in self.find("AnyModel")
            if str(m.opened.get("_anywidget_id", "")).endswith("FigureWidget")
        ]


def _with_buffers(
    state: t.Mapping[str, t.Any], paths: t.Sequence[t.Sequence[t.Any]], buffers: t.Sequence[bytes]
) -> dict[str, t.Any]:
    """``state`` with buffer ``i`` put at ``paths[i]``, as ipywidgets' ``put_buffers`` does."""
    result = copy.deepcopy(dict(state))
    for path, buffer in zip(paths, buffers, strict=False):
        if not path:
            continue
        target: t.Any = result
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = bytes(buffer)
    return result


class PlotlyFigure:
    """A plotly ``FigureWidget`` as its JavaScript draws it: traces edited by each restyle.

    The JavaScript applies a ``_py2js_restyle`` value that is not None as an
    edit (``Plotly.restyle``): for each key of ``restyle_data``, trace number
    ``k`` of ``restyle_traces`` takes element ``k`` of the value when it is a
    list (cycled), else the value itself. A key with dots names a nested
    property. The reset to None that follows each edit changes nothing.
    """

    def __init__(self, model: WidgetModel) -> None:
        self.comm_id = model.comm_id
        self.traces: list[dict[str, t.Any]] = copy.deepcopy(model.opened.get("_widget_data", []))
        #: Every restyle applied, in order.
        self.restyles: list[dict[str, t.Any]] = []
        for key, value in model.changes:
            self._on_change(key, value)
        model.observers.append(self._on_change)

    def _on_change(self, key: str, value: t.Any) -> None:
        if key == "_widget_data":  # the whole figure, sent on the first display
            self.traces = copy.deepcopy(value)
        if key != "_py2js_restyle" or value is None:
            return
        self.restyles.append(value)
        data = value.get("restyle_data") or {}
        traces = value.get("restyle_traces") or []
        for position, index in enumerate(traces):
            for name, given in data.items():
                new = given[position % len(given)] if isinstance(given, list) and given else given
                _set_path(self.traces[index], name.split("."), copy.deepcopy(new))


def _set_path(target: dict[str, t.Any], path: list[str], value: t.Any) -> None:
    for step in path[:-1]:
        target = target.setdefault(step, {})
    target[path[-1]] = value
