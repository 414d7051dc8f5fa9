"""The kernel binding: the comm class and manager of a running ipykernel."""

from .comm import KernelComm
from .manager import KernelCommManager

__all__ = ["KernelComm", "KernelCommManager"]
