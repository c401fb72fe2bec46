"""``python -m cnaps_demo``: the command line (see ``cnaps_demo.cli``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
