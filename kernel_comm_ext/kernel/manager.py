"""KernelCommManager: the comm manager of a running ipykernel, configurable with traitlets.

Settings live here as traits with help text, so ``ipython_kernel_config.py``
(``c.KernelCommManager.<name> = ...``) and ``%config KernelCommManager`` reach
them. The registry and the message handlers are those of the protocol layer's
CommManager; this class adds the kernel: the comm class it creates, the loop
coroutine callbacks run on, and how callback errors reach the notebook user.
"""

from __future__ import annotations

import asyncio
import typing as t

from traitlets import (
    Bool,
    Enum,
    Float,
    Instance,
    Int,
    List,
    TraitError,
    Unicode,
    observe,
    validate,
)
from traitlets.config import LoggingConfigurable

from ..delivery.coalescible import BadRule, parse_rules
from ..delivery.sender import DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_MESSAGES, CommSender
from ..delivery.stats import DeliveryStats
from ..iopub.stats import IOPubStats
from ..iopub.takeover import IOPubSettings, IOPubTakeover
from ..iopub.wire import IOPubBatch
from ..protocol.manager import CommManager
from ..protocol.stats import CommStats
from .cell_hooks import CellHooks
from .comm import KernelComm
from .dispatch import DISPATCH_MODES, MainLoopDispatch


class KernelCommManager(LoggingConfigurable, CommManager):
    """The comm manager kernel-comm-ext installs into a running ipykernel."""

    kernel = Instance("ipykernel.kernelbase.Kernel", allow_none=True)

    max_frontend_comms = Int(
        10_000,
        help="""Most comms a frontend may have open at once (0: no limit).
        A comm_open beyond it is closed back to the frontend and the reason logged.""",
    ).tag(config=True)

    show_callback_errors = Bool(
        True,
        help="""Show exceptions raised by comm callbacks (targets, on_msg, on_close;
        sync or async) to the notebook user, as IPython shows errors. They are
        always logged with their traceback.""",
    ).tag(config=True)

    autoload = Bool(
        True,
        help="""Load kernel-comm-ext into every new kernel of this environment (through
        the IPython startup file it installs). False turns auto-enable off; the
        KERNEL_COMM_EXT_AUTOLOAD environment variable (0/false/no/off, 1/true/yes/on)
        wins when set. Read once when a kernel starts: at run time use
        %unload_ext kernel_comm_ext.""",
    ).tag(config=True)

    rate_budget = Float(
        500.0,
        min=0.0,
        help="""Comm messages per second (comm_msg and comm_close) the package
        sends before messages wait in the kernel (0: no budget). Jupyter Server
        drops IOPub messages past ServerApp.iopub_msg_rate_limit (1000/s over
        rate_limit_window, 3 s); the default leaves room for other output.""",
    ).tag(config=True)

    coalesce_updates = Bool(
        True,
        help="""Over the rate budget, merge the waiting 'update' messages of widgets
        whose views render from current state (ipywidgets' controls, and
        coalescible_models): newest value of each key wins, so fewer messages
        go out and the page ends on the latest state. Nothing else is merged.""",
    ).tag(config=True)

    coalescible_models = List(
        Unicode(),
        help="""More widget models whose updates may be merged over the rate budget,
        as 'module:ModelName' (every trait) or 'module:ModelName.trait' (that trait
        only), e.g. 'my-widgets:GaugeModel'. Only declare models whose views draw
        from the current state: a trait the page treats as an event or a stream of
        commands must never be merged. ipywidgets' own controls are built in.""",
    ).tag(config=True)

    queue_messages = Int(
        DEFAULT_QUEUE_MESSAGES,
        min=0,
        help="""Most comm messages that may wait in the kernel for the rate budget;
        beyond it the sending code waits (interruptible) until they went out (0: no cap).""",
    ).tag(config=True)

    queue_bytes = Int(
        DEFAULT_QUEUE_BYTES,
        min=0,
        help="""Most bytes of binary buffers that may wait in the kernel for the rate
        budget; beyond it the sending code waits (0: no cap).""",
    ).tag(config=True)

    pace_messages = Bool(
        None,
        allow_none=True,
        help="""Deprecated and ignored: over the rate budget every message that is not
        merged now waits in order in the kernel (see queue_messages).""",
    ).tag(config=True)

    lossless_iopub = Bool(
        True,
        help="""Make the kernel's IOPub channel lossless while kernel-comm-ext is loaded:
        a send waits for a slow frontend instead of being dropped by zmq at the
        high-water mark (order kept; the waiting slows the sending code down).""",
    ).tag(config=True)

    iopub_sndhwm = Int(
        10_000,
        min=0,
        help="""Send high-water mark of the IOPub socket while lossless (messages a
        frontend may fall behind inside zmq before sends wait; 0: keep ipykernel's).""",
    ).tag(config=True)

    iopub_stall_timeout = Float(
        10.0,
        min=0.0,
        help="""Seconds a send waits for a frontend that takes no IOPub message at all
        before the channel drops what that frontend has no room for (one warning is
        logged; lossless again once it catches up). Frontends that keep up lose nothing.""",
    ).tag(config=True)

    iopub_backlog_messages = Int(
        100_000,
        min=0,
        help="""Most IOPub messages that may wait in the kernel, at the socket for a
        slow frontend or (comm messages) queued for the IOPub thread; beyond it,
        code sending from a cell (any thread but ipykernel's own) waits (0: no cap).
        A cell in a tight loop keeps the interpreter lock, so the IOPub thread takes
        almost nothing until the loop ends: under the cap, the loop is not slowed.""",
    ).tag(config=True)

    iopub_backlog_bytes = Int(
        256 * 1024 * 1024,
        min=0,
        help="""Most bytes of IOPub messages that may wait in the kernel, at the socket
        for a slow frontend or (the binary buffers of comm messages) queued for the
        IOPub thread; beyond it, code sending from a cell waits (0: no cap).""",
    ).tag(config=True)

    batch_iopub_wakeups = Bool(
        True,
        help="""Wake ipykernel's IOPub thread once for everything handed to it since it
        last ran, instead of once per message or stream flush (order is kept). Read
        when kernel-comm-ext loads: to change it in a running kernel, set it with
        %config and run %reload_ext kernel_comm_ext.""",
    ).tag(config=True)

    callback_dispatch = Enum(
        DISPATCH_MODES,
        default_value="main",
        help="""Where comm callbacks (targets, on_msg, on_close) run. 'main': always on
        the kernel's main event loop, serialized with cell code (between cells, while
        an async cell awaits, or inside a kernel_comm_ext wait), so a callback never
        races a running cell for matplotlib's figures or any other shared state.
        'routed': where ipykernel hands the message; on ipykernel 7 with a frontend
        that uses subshells (JupyterLab's default), on the subshell's thread,
        concurrently with the running cell. On ipykernel 6 both are the same.""",
    ).tag(config=True)

    #: The Installation that put this manager in its kernel (set by the installer).
    installation: t.Any = None

    def __init__(self, **kwargs: t.Any) -> None:
        super().__init__(**kwargs)
        if self.kernel is None:
            raise ValueError(
                "KernelCommManager serves one kernel: pass KernelCommManager(kernel=...)"
            )
        self.sender = CommSender(
            self.kernel,
            self.rate_budget,
            self.coalesce_updates,
            coalescible=self.coalescible_models,
            max_messages=self.queue_messages,
            max_bytes=self.queue_bytes,
        )
        self._report_sections: dict[str, t.Callable[[], str | None]] = {}
        self.add_report_section("Flow control", lambda: self.delivery_stats().report_lines())
        batch = self.sender.iopub_socket
        #: The takeover of the kernel's IOPub thread (started by the installer).
        self.iopub = IOPubTakeover(
            self.kernel,
            batch if isinstance(batch, IOPubBatch) else None,
            self._iopub_settings(),
            self.log,
        )
        self.add_report_section("IOPub channel", lambda: self.iopub.stats().report_text())
        self.cell_hooks = CellHooks(getattr(self.kernel, "shell", None), self.sender)
        self.dispatch = MainLoopDispatch(self.kernel, self.callback_dispatch)

    @observe(
        "rate_budget", "coalesce_updates", "coalescible_models", "queue_messages", "queue_bytes"
    )
    def _delivery_settings_changed(self, _change: t.Any) -> None:
        # Also called while traitlets loads the configuration, before the sender exists.
        sender = getattr(self, "sender", None)
        if sender is not None:
            sender.configure(
                self.rate_budget,
                self.coalesce_updates,
                coalescible=self.coalescible_models,
                max_messages=self.queue_messages,
                max_bytes=self.queue_bytes,
            )

    @validate("coalescible_models")
    def _check_coalescible_models(self, proposal: t.Any) -> t.Any:
        try:
            parse_rules(proposal["value"])
        except BadRule as exc:
            raise TraitError(f"{self.setting_name('coalescible_models')}: {exc}") from None
        return proposal["value"]

    @observe("pace_messages")
    def _pace_messages_changed(self, change: t.Any) -> None:
        if change["new"] is not None:
            self.log.warning(
                "kernel-comm-ext: %s is deprecated and has no effect: over the rate budget,"
                " messages that are not merged wait in order in the kernel (see %s)",
                self.setting_name("pace_messages"),
                self.setting_name("queue_messages"),
            )

    def delivery_stats(self) -> DeliveryStats:
        """What flow control did, in total and for each open comm: sent, merged, waited."""
        return self.sender.stats(self.comms.values())

    def create_comm(self, **kwargs: t.Any) -> KernelComm:
        """Make a comm bound to this manager's kernel (also the ``comm.create_comm`` hook)."""
        return KernelComm(kernel=self.kernel, sender=self.sender, **kwargs)

    def register_comm(self, comm: t.Any) -> str:
        """Register a comm; one of this kernel's KernelComms then sends through this sender.

        A comm moved in from an earlier manager (``%reload_ext``) would
        otherwise keep sending through that manager's closed sender, outside
        the rate budget.
        """
        if isinstance(comm, KernelComm) and comm.kernel is self.kernel:
            comm._sender = self.sender
        return super().register_comm(comm)

    def get_comm_manager(self) -> KernelCommManager:
        """Return this manager (the ``comm.get_comm_manager`` hook)."""
        return self

    def comm_stats(self) -> list[CommStats]:
        """Traffic figures of every open comm created by this package."""
        return [c.stats() for c in self.comms.values() if hasattr(c, "stats")]

    def add_report_section(self, title: str, render: t.Callable[[], str | None]) -> None:
        """Add a section to the ``%comm`` report, after the comm table.

        ``render()`` returns the section's text, or None to leave it out this
        time; it is called each time ``%comm`` runs. A title used again replaces
        the earlier section.
        """
        self._report_sections[title] = render

    def report_sections(self) -> list[tuple[str, str]]:
        """The extra ``%comm`` sections as (title, text); a section that raised says so."""
        sections: list[tuple[str, str]] = []
        for title, render in list(self._report_sections.items()):
            try:
                text = render()
            except Exception as exc:
                self.log.error("The %%comm section %r failed", title, exc_info=exc)
                text = f"(unavailable: {exc!r})"
            if text is not None:
                sections.append((title, text))
        return sections

    # the IOPub thread (iopub/takeover.py)

    def iopub_stats(self) -> IOPubStats:
        """Figures of the IOPub channel: waits, fallbacks, dropped messages, backlog."""
        return self.iopub.stats()

    def _iopub_settings(self) -> IOPubSettings:
        return IOPubSettings(
            lossless=self.lossless_iopub,
            sndhwm=self.iopub_sndhwm,
            stall_timeout=self.iopub_stall_timeout,
            max_messages=self.iopub_backlog_messages,
            max_bytes=self.iopub_backlog_bytes,
            batch_wakeups=self.batch_iopub_wakeups,
        )

    @observe(
        "lossless_iopub",
        "batch_iopub_wakeups",
        "iopub_sndhwm",
        "iopub_stall_timeout",
        "iopub_backlog_messages",
        "iopub_backlog_bytes",
    )
    def _iopub_setting_changed(self, _change: t.Any) -> None:
        # Also called while traitlets loads the configuration, before the takeover exists.
        takeover = getattr(self, "iopub", None)
        if takeover is not None:
            takeover.configure(self._iopub_settings())

    # comm callbacks and the running cell (cell_hooks.py)

    def start_callbacks(self) -> None:
        """Start following which cells run, for the callback scope (on install)."""
        self.cell_hooks.start()

    def stop_callbacks(self) -> None:
        """Stop following cells and release the main-loop queue (on uninstall)."""
        self.cell_hooks.stop()
        self.dispatch.close()

    @observe("callback_dispatch")
    def _callback_dispatch_changed(self, change: t.Any) -> None:
        dispatch = getattr(self, "dispatch", None)
        if dispatch is not None:
            dispatch.mode = change["new"]

    def comm_open(self, stream: t.Any, ident: t.Any, msg: dict[str, t.Any]) -> None:
        """Handle a frontend's ``comm_open`` where ``callback_dispatch`` says."""
        self.dispatch.handle(super().comm_open, stream, ident, msg)

    def comm_msg(self, stream: t.Any, ident: t.Any, msg: dict[str, t.Any]) -> None:
        """Handle a frontend's ``comm_msg`` where ``callback_dispatch`` says."""
        self.dispatch.handle(super().comm_msg, stream, ident, msg)

    def comm_close(self, stream: t.Any, ident: t.Any, msg: dict[str, t.Any]) -> None:
        """Handle a frontend's ``comm_close`` where ``callback_dispatch`` says."""
        self.dispatch.handle(super().comm_close, stream, ident, msg)

    def callback_scope(self) -> t.ContextManager[None]:
        """Fire the cell hooks around an ``on_msg`` callback only when no cell is running."""
        return self.cell_hooks.scope()

    # CallbackHost

    def report_callback_error(self, what: str, exc: BaseException) -> None:
        """Log a callback's exception with its traceback and, if enabled, show it to the user."""
        super().report_callback_error(what, exc)
        if not self.show_callback_errors:
            return
        shell = getattr(self.kernel, "shell", None)
        if shell is None:
            return
        try:
            shell.showtraceback((type(exc), exc, exc.__traceback__))
        except Exception as show_exc:
            self.log.error("Could not show the error of %s", what, exc_info=show_exc)

    def callback_loop(self) -> asyncio.AbstractEventLoop | None:
        """The kernel's main asyncio loop, for coroutine callbacks run from plain threads."""
        io_loop = getattr(self.kernel, "io_loop", None)
        return getattr(io_loop, "asyncio_loop", None)
