"""Widgets whose synced traits are edits or commands lose nothing through a real Jupyter Server.

A real ``jupyter server`` with its default IOPub limits (1,000 msg/s over
3 s) sits between the kernel and a websocket client that applies every widget
message in order, as JupyterLab's widget manager does
(``kernel_comm_ext.testing.widget_frontend``), and records every change event.

- plotly's ``FigureWidget`` sends each edit by setting ``_py2js_restyle`` and
  resetting it to None at once; its JavaScript applies each value that is not
  None. Merging updates of such a widget ("newest value of each key wins")
  leaves the page on a stale trace.
- An ``anywidget.AnyWidget`` whose page treats a synced trait as a stream of
  commands must see every value, in order.

The extension tests (``test_*_with_the_extension``) need the merge rule of
README's "Delivery under load" (only listed or declared models are merged,
the rest waits in order in the kernel over the rate budget): on a comm layer
that merges every widget's updates they fail. The default-layer tests record
what ipykernel's own comm layer loses (run with ``-s`` to see the figures);
they assert nothing about how much.
"""

from __future__ import annotations

import ast
import typing as t

from kernel_comm_ext.testing.widget_frontend import PlotlyFigure, WidgetFrontend, WidgetModel

from .server_client import ServerKernel

LOOPS = 2000
FIGURE = """
import plotly.graph_objects as go
fig = go.FigureWidget(data=[go.Scatter(y=[0, 0, 0])])
first_edit = fig._last_trace_edit_id + 1
"""
PLOTLY_LOOP = f"for i in range({LOOPS}): fig.data[0].y = [i, i + 1, i + 2]"
KERNEL_TRACE = "print(list(fig.data[0].y), fig._last_trace_edit_id - first_edit + 1)"

STREAM = """
import anywidget, traitlets

class Commands(anywidget.AnyWidget):
    _esm = '''
    export default {
      render({ model, el }) {
        const seen = [];
        el.dataset.seen = '[]';
        model.on('change:command', () => {
          seen.push(model.get('command'));
          el.dataset.seen = JSON.stringify(seen);
        });
      }
    };
    '''
    command = traitlets.Int(-1).tag(sync=True)

w = Commands()
"""
STREAM_LOOP = f"for i in range({LOOPS}): w.command = i"
RATE_EXCEEDED = "IOPub message rate exceeded"


def _page(kernel: ServerKernel) -> WidgetFrontend:
    page = WidgetFrontend()
    page.apply_all(kernel.messages())
    return page


def _figure(kernel: ServerKernel) -> PlotlyFigure:
    figures = _page(kernel).figures()
    assert len(figures) == 1, "one FigureWidget on the page"
    return figures[0]


def _stream(kernel: ServerKernel) -> WidgetModel:
    models = _page(kernel).find("AnyModel")
    assert len(models) == 1, "one AnyWidget on the page"
    return models[0]


def _run_to_quiet(kernel: ServerKernel, code: str) -> None:
    """Run ``code`` (its idle status may be dropped); wait for its reply and until nothing comes."""
    kernel.reply_to(kernel.send_execute(code), timeout=180)
    kernel.wait_quiet(3.0, timeout=180)


def _rate_warnings(kernel: ServerKernel) -> int:
    return sum(RATE_EXCEEDED in m["content"]["text"] for m in kernel.messages("iopub", "stream"))


def _kernel_trace(kernel: ServerKernel) -> tuple[list[int], int]:
    y, edits = kernel.execute(KERNEL_TRACE).stdout.rsplit(" ", 1)
    return t.cast(list[int], ast.literal_eval(y)), int(edits)


def _restyled_y(figure: PlotlyFigure) -> list[list[int]]:
    return [r["restyle_data"]["y"][0] for r in figure.restyles]


def _figures(label: str, **figures: t.Any) -> None:
    print(f"\n[{label}] " + ", ".join(f"{k}={v}" for k, v in figures.items()))


EXPECTED_Y = [[i, i + 1, i + 2] for i in range(LOOPS)]


def _plotly_loop(
    kernel: ServerKernel,
) -> tuple[list[int], int, PlotlyFigure, list[list[int]]]:
    """Show the figure, run the loop until the page is quiet: the kernel's trace and edit
    count, the page's figure and the restyles it drew, in order."""
    kernel.execute(FIGURE)
    _run_to_quiet(kernel, PLOTLY_LOOP)
    kernel_y, kernel_edits = _kernel_trace(kernel)
    figure = _figure(kernel)
    return kernel_y, kernel_edits, figure, _restyled_y(figure)


def test_plotly_loop_reaches_the_page_with_the_extension(server_kernel: ServerKernel) -> None:
    kernel = server_kernel
    kernel.execute("%load_ext kernel_comm_ext")
    kernel_y, kernel_edits, figure, restyled = _plotly_loop(kernel)
    _figures(
        "extension plotly",
        restyles=f"{len(restyled)}/{kernel_edits}",
        page=figure.traces[0]["y"],
        kernel=kernel_y,
        rate_warnings=_rate_warnings(kernel),
    )
    assert kernel_edits == LOOPS
    assert restyled == EXPECTED_Y, f"{len(restyled)} of {LOOPS} restyles reached the page"
    assert figure.traces[0]["y"] == kernel_y == [LOOPS - 1, LOOPS, LOOPS + 1]
    assert _rate_warnings(kernel) == 0


def test_plotly_loop_on_the_default_comm_layer(server_kernel: ServerKernel) -> None:
    kernel = server_kernel
    kernel_y, kernel_edits, figure, restyled = _plotly_loop(kernel)
    _figures(
        "default plotly",
        restyles=f"{len(restyled)}/{kernel_edits}",
        in_order=restyled == sorted(restyled),
        page=figure.traces[0]["y"],
        kernel=kernel_y,
        rate_warnings=_rate_warnings(kernel),
    )
    assert kernel_edits == LOOPS
    assert kernel_y == [LOOPS - 1, LOOPS, LOOPS + 1]


def test_anywidget_command_stream_arrives_in_order_with_the_extension(
    server_kernel: ServerKernel,
) -> None:
    kernel = server_kernel
    kernel.execute("%load_ext kernel_comm_ext")
    kernel.execute(STREAM)
    _run_to_quiet(kernel, STREAM_LOOP)

    seen = _stream(kernel).values("command")
    _figures("extension anywidget", seen=len(seen), last=seen[-1] if seen else None)
    assert seen == list(range(LOOPS)), f"{len(seen)} of {LOOPS} commands reached the page"
    assert _rate_warnings(kernel) == 0


def test_anywidget_command_stream_on_the_default_comm_layer(server_kernel: ServerKernel) -> None:
    kernel = server_kernel
    kernel.execute(STREAM)
    _run_to_quiet(kernel, STREAM_LOOP)

    seen = _stream(kernel).values("command")
    _figures(
        "default anywidget",
        seen=len(seen),
        in_order=seen == sorted(seen),
        last=seen[-1] if seen else None,
        rate_warnings=_rate_warnings(kernel),
    )
    assert kernel.execute("print(w.command)").stdout == f"{LOOPS - 1}\n"
