"""``python -m earlywarn`` is the ``earlywarn`` command."""

import sys

from earlywarn.cli import main

sys.exit(main())
