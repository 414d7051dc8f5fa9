"""The protocol layer: comms and their manager, knowing nothing of ipykernel."""

from .comm import BaseComm
from .manager import CommManager
from .stats import CommStats

__all__ = ["BaseComm", "CommManager", "CommStats"]
