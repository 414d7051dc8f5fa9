"""What the tests look at: widgets in the page, and the comm manager in use in the kernel."""

from __future__ import annotations

import re
import typing as t

from playwright.sync_api import expect

from ..frontend import Frontend

if t.TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

OURS = "KernelCommManager"

# The manager the comm package hands to widget libraries, and the one the kernel dispatches to.
MANAGERS_IN_USE = (
    "(type(__import__('comm').get_comm_manager()).__name__,"
    " type(get_ipython().kernel.comm_manager).__name__)"
)


def managers_in_use(kernel: Frontend) -> tuple[str, str]:
    """Class names of ``comm.get_comm_manager()`` and ``kernel.comm_manager`` in the kernel."""
    return t.cast("tuple[str, str]", kernel.eval(MANAGERS_IN_USE))


def assert_ours(kernel: Frontend) -> None:
    """kernel-comm-ext's manager is the one widget libraries and the kernel use."""
    in_use = managers_in_use(kernel)
    assert in_use == (OURS, OURS), f"comm managers in use: {in_use}, expected {OURS}"


def assert_not_ours(kernel: Frontend) -> None:
    """ipykernel's own comm layer is in use."""
    in_use = managers_in_use(kernel)
    assert OURS not in in_use, f"comm managers in use: {in_use}, expected ipykernel's"


def in_our_manager(kernel: Frontend, widget: str) -> bool:
    """Whether the comm of the kernel object ``widget`` is registered with kernel-comm-ext."""
    return bool(
        kernel.eval(
            f"type(get_ipython().kernel.comm_manager).__name__ == {OURS!r}"
            f" and get_ipython().kernel.comm_manager.get_comm({widget}.comm.comm_id)"
            f" is {widget}.comm"
        )
    )


class Slider:
    """An ipywidgets slider in the page, found by its description."""

    def __init__(self, page: Page, description: str) -> None:
        self.root = page.locator(".widget-slider").filter(
            has=page.locator(".widget-label").get_by_text(description, exact=True)
        )
        self.handle = self.root.locator(".noUi-handle")
        self.readout = self.root.locator(".widget-readout")

    def press(self, key: str, times: int = 1) -> None:
        """Move the slider from the keyboard, as a user does with its handle focused."""
        for _ in range(times):
            self.handle.press(key)

    def expect_value(self, value: int) -> None:
        """The slider shows ``value``: the handle's position and the readout."""
        expect(self.handle).to_have_attribute("aria-valuenow", re.compile(rf"^{value}(\.0+)?$"))
        expect(self.readout).to_have_text(str(value))


def text_box(page: Page | Locator, description: str) -> Locator:
    """The input of an ipywidgets text widget, found by its description."""
    return (
        page.locator(".widget-text")
        .filter(has=page.locator(".widget-label").get_by_text(description, exact=True))
        .locator("input")
    )
