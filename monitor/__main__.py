"""`python -m monitor`: the dq-monitor command, for environments without the console script."""

import sys

from monitor.cli import main

sys.exit(main())
