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

from traitlets import Bool, Instance, Int
from traitlets.config import LoggingConfigurable

from ..protocol.manager import CommManager
from ..protocol.stats import CommStats
from .comm import KernelComm
from .sender import CommSender


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

    #: The Installation that put this manager in its kernel (set by the installer).
    installation: t.Any = None

    def __init__(self, **kwargs: t.Any) -> None:
        super().__init__(**kwargs)
        if self.kernel is None:
            raise ValueError(
                "KernelCommManager serves one kernel: pass KernelCommManager(kernel=...)"
            )
        self.sender = CommSender(self.kernel)
        self._report_sections: dict[str, t.Callable[[], str | None]] = {}

    def create_comm(self, **kwargs: t.Any) -> KernelComm:
        """Make a comm bound to this manager's kernel (also the ``comm.create_comm`` hook)."""
        return KernelComm(kernel=self.kernel, sender=self.sender, **kwargs)

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
