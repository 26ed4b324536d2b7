"""A transaction that holds an outbox row uncommitted while the test goes on (a late committer)."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction

from saga.messaging import publish


@contextmanager
def held_uncommitted(**message: Any) -> Iterator[None]:
    """Publish `message` in a transaction of another connection, which takes its position at once
    and commits only when the block ends."""
    inserted, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                publish(**message)
                inserted.set()
                release.wait(60)
        finally:
            connection.close()

    holder = threading.Thread(target=hold, name="late-committer")
    holder.start()
    try:
        assert inserted.wait(30), "the late committer did not insert its row"
        yield
    finally:
        release.set()
        holder.join(30)
