"""ipycanvas in JupyterLab on kernel-comm-ext (examples/compat_ipycanvas.ipynb)."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest

from .compat import LOOP, check_loop, record_loop_on_ipykernel, screenshot
from .lab import AUTOLOAD_KERNEL, NotebookPage, wait_until
from .widgets import assert_not_ours, assert_ours

if t.TYPE_CHECKING:
    from .conftest import OpenNotebook

pytestmark = [pytest.mark.browser, pytest.mark.compat]

NOTEBOOK = "compat_ipycanvas.ipynb"
CANVAS = ".jp-OutputArea canvas"
# Each pass paints the top-left square one of 8 shades of red (32 apart: the page's colour
# handling may round a channel by one); the loop's last is shade 1999 % 8.
LOOP_CODE = (
    f"for i in range({LOOP}):\n"
    "    canvas.fill_style = f'rgb({i % 8 * 32}, 0, 0)'\n"
    "    canvas.fill_rect(0, 0, 20, 20)"
)
FINAL = [(LOOP - 1) % 8, 0, 0]


def pixel(nb: NotebookPage, x: int, y: int) -> list[int]:
    """The RGB of one pixel of the canvas, as the page's canvas holds it."""
    return list(
        nb.page.locator(CANVAS).first.evaluate(
            "(c, [x, y]) => Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data)",
            [x, y],
        )[:3]
    )


def near(rgb: list[int], expected: list[int]) -> bool:
    """Whether two colours agree within the page's rounding (one or two steps a channel)."""
    return all(abs(a - b) <= 2 for a, b in zip(rgb, expected, strict=True))


def shade(nb: NotebookPage) -> list[int]:
    """The top-left square's colour in steps of 32."""
    return [round(c / 32) for c in pixel(nb, 5, 5)]


def open_canvas(open_compat: OpenNotebook, kernel_name: str | None) -> NotebookPage:
    nb = open_compat(NOTEBOOK, kernel=kernel_name)
    nb.run_all()
    nb.page.locator(CANVAS).first.wait_for()
    wait_until(lambda: near(pixel(nb, 5, 5), [0, 0, 255]), True, what="blue background")
    return nb


def test_ipycanvas_drawing(open_compat: OpenNotebook, screenshots: Path) -> None:
    nb = open_canvas(open_compat, AUTOLOAD_KERNEL)
    kernel = nb.kernel()
    assert_ours(kernel)
    # The image (a binary buffer) is on the page: red left half, green right half.
    assert near(pixel(nb, 100, 80), [255, 0, 0])
    assert near(pixel(nb, 140, 80), [0, 255, 0])
    # ... and the page's pixels came back to the kernel (binary, page -> kernel).
    wait_until(
        lambda: kernel.eval("canvas.image_data is not None"), True, what="image data in the kernel"
    )
    red, green = kernel.eval(
        "[canvas.get_image_data(100, 80, 1, 1)[0, 0, :3].tolist(),"
        " canvas.get_image_data(140, 80, 1, 1)[0, 0, :3].tolist()]"
    )
    assert near(red, [255, 0, 0])
    assert near(green, [0, 255, 0])

    # Page -> kernel: a click on the canvas runs on_mouse_down with its coordinates.
    box = nb.page.locator(CANVAS).first.bounding_box()
    assert box is not None
    nb.page.mouse.click(box["x"] + 30, box["y"] + 40)
    wait_until(lambda: kernel.eval("downs"), [(30, 40)], what="mouse downs in the kernel")
    screenshot(nb.page.locator(CANVAS).first, screenshots / "compat-ipycanvas.png")

    kernel.run(LOOP_CODE)
    check_loop("ipycanvas", lambda: shade(nb), FINAL)
    assert_ours(kernel)


def test_ipycanvas_loop_on_ipykernel(open_compat: OpenNotebook) -> None:
    nb = open_canvas(open_compat, None)
    assert_not_ours(nb.kernel())
    nb.kernel().run(LOOP_CODE)
    record_loop_on_ipykernel("ipycanvas", lambda: shade(nb), FINAL)
