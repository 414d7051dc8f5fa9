"""Which widget updates may be merged: the models whose views render from current state.

Merging two ``update`` messages of a widget (``widget_updates.py``) leaves the
frontend's model in the same state, but its views see one change event where
there were two. That is invisible only where a view draws from the model's
current state and nothing acts on the change itself. ``COALESCIBLE_MODELS``
lists the models known to be such: ipywidgets' own controls, containers,
layouts and styles; ``COALESCIBLE_TRAITS`` lists single traits of other
libraries' models whose page-side handler only copies the model's current
value into the view. A comm's model is read from its ``comm_open``
(``state._model_module`` and ``state._model_name``); a comm whose model is not
known, or not listed, is never merged.

Left out on purpose:

- ``@jupyter-widgets/output:OutputModel``: its ``msg_id`` is set on
  ``with out:`` and reset on exit; the page captures output by the change.
- ``ControllerModel`` (and its buttons and axes), ``FileUploadModel``: their
  state is written by the frontend; the kernel's updates are rare.
- ``AudioModel``, ``VideoModel``: setting a value again restarts playback.
- ``ButtonModel``: nothing to gain (clicks travel as custom messages), left to
  the default.
- Any other library's model (plotly's ``FigureModel`` sends each edit as a
  trait set and reset at once; anywidget models are whatever their JavaScript
  makes of a change). A library or user declares its own through
  ``KernelCommManager.coalescible_models``, parsed by ``parse_rules``.
"""

from __future__ import annotations

import typing as t

CONTROLS = "@jupyter-widgets/controls"
BASE = "@jupyter-widgets/base"

#: (model module, model name) of the models whose updates may be merged.
COALESCIBLE_MODELS: frozenset[tuple[str, str]] = frozenset(
    [(BASE, "LayoutModel"), (BASE, "StyleModel")]
    + [
        (CONTROLS, name)
        for name in (
            # sliders, progress bars, numbers
            "IntSliderModel",
            "FloatSliderModel",
            "FloatLogSliderModel",
            "IntRangeSliderModel",
            "FloatRangeSliderModel",
            "SelectionSliderModel",
            "SelectionRangeSliderModel",
            "IntProgressModel",
            "FloatProgressModel",
            "IntTextModel",
            "FloatTextModel",
            "BoundedIntTextModel",
            "BoundedFloatTextModel",
            "PlayModel",
            # booleans, text, selection
            "CheckboxModel",
            "ToggleButtonModel",
            "ValidModel",
            "TextModel",
            "TextareaModel",
            "PasswordModel",
            "ComboboxModel",
            "LabelModel",
            "HTMLModel",
            "HTMLMathModel",
            "DropdownModel",
            "RadioButtonsModel",
            "SelectModel",
            "SelectMultipleModel",
            "ToggleButtonsModel",
            "ColorPickerModel",
            "DatePickerModel",
            "TimeModel",
            "DatetimeModel",
            "NaiveDatetimeModel",
            "TagsInputModel",
            "ColorsInputModel",
            "FloatsInputModel",
            "IntsInputModel",
            "ImageModel",
            # containers
            "BoxModel",
            "HBoxModel",
            "VBoxModel",
            "GridBoxModel",
            "AccordionModel",
            "TabModel",
            "StackModel",
            # styles
            "DescriptionStyleModel",
            "SliderStyleModel",
            "ProgressStyleModel",
            "ButtonStyleModel",
            "ToggleButtonStyleModel",
            "ToggleButtonsStyleModel",
            "CheckboxStyleModel",
            "TextStyleModel",
            "LabelStyleModel",
            "HTMLStyleModel",
            "HTMLMathStyleModel",
        )
    ]
)

#: Single traits of other libraries' models that may be merged, by (model module, model name).
COALESCIBLE_TRAITS: dict[tuple[str, str], frozenset[str]] = {
    # ipydatagrid's view sets the grid's sizes, widths and header visibility from
    # the model's current value on each change; every update repaints the whole
    # grid, so a loop of unmerged ones keeps the page busy long after the cell.
    # Its data, transforms and selections are left out.
    ("ipydatagrid", "DataGridModel"): frozenset(
        {
            "base_row_size",
            "base_column_size",
            "base_row_header_size",
            "base_column_header_size",
            "column_widths",
            "header_visibility",
        }
    ),
}

#: Traits whose change tells the page where the kernel's output goes, by model: the
#: ``Output`` widget's ``msg_id``, set on ``with out:`` and reset on exit. Output
#: printed next goes out on IOPub at once, so an update setting one of them never
#: waits behind other comms' messages (see ``CommSender``).
OUTPUT_ROUTING_TRAITS: dict[tuple[str, str], frozenset[str]] = {
    ("@jupyter-widgets/output", "OutputModel"): frozenset({"msg_id"}),
}

#: Every trait of the model may be merged.
ALL_TRAITS: frozenset[str] = frozenset({"*"})

#: What may be merged, by (model module, model name): ``ALL_TRAITS`` or some traits.
Rules = dict[tuple[str, str], frozenset[str]]


class BadRule(ValueError):
    """An entry of ``coalescible_models`` that is not ``module:Model`` or ``module:Model.trait``."""


def parse_rules(entries: t.Iterable[str]) -> Rules:
    """The tables plus declared entries: ``"module:ModelName"`` or ``"module:ModelName.trait"``.

    The module is everything before the last ``:`` (npm names may hold ``@``
    and ``/``). A bad entry raises ``BadRule`` naming it.
    """
    rules: Rules = dict.fromkeys(COALESCIBLE_MODELS, ALL_TRAITS)
    rules.update(COALESCIBLE_TRAITS)
    for entry in entries:
        module, sep, rest = str(entry).rpartition(":")
        name, _, trait = rest.partition(".")
        if not sep or not module or not name:
            raise BadRule(
                f"{entry!r} is not 'module:ModelName' or 'module:ModelName.trait'"
                " (e.g. '@jupyter-widgets/controls:IntSliderModel')"
            )
        key = (module, name)
        if not trait:
            rules[key] = ALL_TRAITS
        else:
            rules[key] = rules.get(key, frozenset()) | {trait}
    return rules


def mergeable(traits: frozenset[str] | None, keys: t.Iterable[str]) -> bool:
    """Whether an update setting ``keys`` may merge, given the model's coalescible ``traits``."""
    if traits is None:
        return False
    return "*" in traits or all(key in traits for key in keys)


def looks_like_update(content: dict[str, t.Any]) -> bool:
    """Whether a comm_msg may be a widget update: a cheap first look at its ``data.method``."""
    data = content.get("data")
    return type(data) is dict and data.get("method") == "update"


def routes_output(traits: frozenset[str], content: dict[str, t.Any]) -> bool:
    """Whether this comm_msg is an update of one of the output-routing ``traits`` of its model."""
    if not looks_like_update(content):
        return False
    state = content["data"].get("state")
    return type(state) is dict and any(key in traits for key in state)


def model_of(content: dict[str, t.Any]) -> tuple[str, str] | None:
    """(model module, model name) from a ``comm_open``'s content, None if it names none."""
    data = content.get("data")
    state = data.get("state") if type(data) is dict else None
    if type(state) is not dict:
        return None
    module, name = state.get("_model_module"), state.get("_model_name")
    if type(module) is str and type(name) is str:
        return module, name
    return None
