"""python -m lab: the headless command line."""

import sys

from lab.cli import main

sys.exit(main())
