"""Progress lines on stderr: stdout is the table's."""

import sys


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)
