"""`python -m local_runtime`: the command line (local_runtime/cli.py)."""

import sys

from local_runtime.cli import main

sys.exit(main())
