"""``python -m jaxcost``: the command line."""

import sys

from jaxcost.cli import main

sys.exit(main())
