"""The version of kernel-comm-ext."""

__version__ = "0.1.0"
