"""Errors raised in widget callbacks reach the user in JupyterLab (examples/callback_errors)."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .lab import wait_until
from .widgets import assert_ours

if t.TYPE_CHECKING:
    from .conftest import OpenNotebook

pytestmark = pytest.mark.browser


def test_callback_errors_are_shown(open_notebook: OpenNotebook, screenshots: Path) -> None:
    nb = open_notebook("callback_errors.ipynb")
    nb.run_all()
    kernel = nb.kernel()
    assert_ours(kernel)

    # A callback run inside an Output widget: its traceback shows in that Output.
    nb.page.get_by_role("button", name="Fail in Output").click()
    output = nb.page.locator(".widget-output")
    expect(output).to_contain_text("RuntimeError")
    expect(output).to_contain_text("the button callback failed")

    # A comm callback no widget library guards (anywidget.experimental's on_msg, through a
    # psygnal handler): kernel-comm-ext shows the error; JupyterLab puts it in the log console.
    guarded = nb.page.locator(".counter-button", has_text="guarded:")
    # One click at a time, as a person clicks: anywidget.experimental echoes each change
    # back but 3 (refuse_big raises first), so an echo of 2 that arrives after the
    # third click leaves the page on 2 (seen once in CI with three clicks in a row).
    for clicks in (1, 2, 3):
        guarded.click()
        expect(guarded).to_have_text(f"guarded: {clicks}")
    wait_until(lambda: kernel.eval("guarded.value"), 3, what="guarded.value in the kernel")
    console = nb.show_log_console()
    expect(console).to_contain_text("ValueError")
    expect(console).to_contain_text("guarded counter refuses 3")
    nb.screenshot(screenshots / "callback-error-in-log-console.png")
    # Logged with its traceback too (the server's log has its kernels' stderr).
    wait_until(
        lambda: "guarded counter refuses 3" in nb.server.log_tail(50_000),
        True,
        what="the error in the kernel's log",
    )

    # The widget keeps working both ways after the error.
    kernel.run("guarded.value = 1")
    expect(guarded).to_have_text("guarded: 1")
    guarded.click()
    wait_until(lambda: kernel.eval("guarded.value"), 2, what="guarded.value in the kernel")
    assert_ours(kernel)
