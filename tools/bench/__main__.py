"""python -m tools.bench: every benchmark, the table on stdout (tools/bench/run.py)."""

import sys

from tools.bench.run import main

sys.exit(main())
