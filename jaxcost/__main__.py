"""``python -m jaxcost``: the command line, as the ``jaxcost`` script."""

import sys

from jaxcost.cli import main

if __name__ == "__main__":
    sys.exit(main())
