"""``python -m kernel_comm_ext status [--check]``: see ``cli.py``."""

import sys

from .tools.cli import main

if __name__ == "__main__":
    sys.exit(main())
