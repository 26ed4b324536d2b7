"""python -m bench: every benchmark, the table on stdout (bench/run.py)."""

import sys

from bench.run import main

sys.exit(main())
