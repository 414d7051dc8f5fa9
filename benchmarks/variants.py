"""The kernels a benchmark run compares: one per variant, set up by a cell after start.

To compare another configuration, add a ``Variant`` here and name it with
``--variants`` (the first one named is the baseline every ratio divides by).
Only variants with ``judged=True`` are held to the issue's targets.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Variant:
    """A kernel configuration under benchmark."""

    name: str
    description: str
    #: Cell run once in the fresh kernel (e.g. ``%load_ext`` and ``%config`` lines).
    setup: str
    #: Whether the kernel's comm manager is this package's after ``setup`` (checked).
    extension: bool
    #: Whether the issue's targets apply to this variant (against the baseline).
    judged: bool = False
    #: Whether the frontend sends comm messages to a subshell, as JupyterLab 4.6 does.
    comm_subshell: bool = False


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "default",
            "ipykernel's own comm layer",
            setup="",
            extension=False,
        ),
        Variant(
            "default-again",
            "a second kernel like the baseline: the A/A ratio shows the noise between kernels",
            setup="",
            extension=False,
        ),
        Variant(
            "ext",
            "after %load_ext kernel_comm_ext",
            setup="%load_ext kernel_comm_ext",
            extension=True,
            judged=True,
        ),
        Variant(
            "ext-lossy",
            "the extension with lossless IOPub off (ipykernel's dropping IOPub socket)",
            setup="%load_ext kernel_comm_ext\n%config KernelCommManager.lossless_iopub = False",
            extension=True,
        ),
        Variant(
            "ext-wakeups",
            "the extension waking the IOPub thread once per message, as ipykernel does",
            setup="get_ipython().config.KernelCommManager.batch_iopub_wakeups = False\n"
            "%load_ext kernel_comm_ext",
            extension=True,
        ),
        Variant(
            "ext-bare",
            "the extension with lossless IOPub and the rate budget off",
            setup="%load_ext kernel_comm_ext\n%config KernelCommManager.lossless_iopub = False\n"
            "%config KernelCommManager.rate_budget = 0",
            extension=True,
        ),
        # Where comm callbacks run (README: "Callbacks and the running cell"), with the
        # frontend sending comm messages over a subshell. Compare them with
        # --variants default-subshell,ext-subshell,ext-routed-subshell.
        Variant(
            "default-subshell",
            "ipykernel's own comm layer, comm messages sent to a subshell",
            setup="",
            extension=False,
            comm_subshell=True,
        ),
        Variant(
            "ext-subshell",
            "the extension (callbacks on the main loop), comm messages sent to a subshell",
            setup="%load_ext kernel_comm_ext",
            extension=True,
            comm_subshell=True,
        ),
        Variant(
            "ext-routed-subshell",
            "the extension with callback_dispatch = 'routed', comm messages sent to a subshell",
            setup="%load_ext kernel_comm_ext\n"
            "%config KernelCommManager.callback_dispatch = 'routed'",
            extension=True,
            comm_subshell=True,
        ),
        Variant(
            "ext-routed",
            "the extension with callback_dispatch = 'routed' (main shell: as 'main')",
            setup="%load_ext kernel_comm_ext\n"
            "%config KernelCommManager.callback_dispatch = 'routed'",
            extension=True,
        ),
    )
}

DEFAULT_VARIANTS = ("default", "ext", "ext-lossy")
