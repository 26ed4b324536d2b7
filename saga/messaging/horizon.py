"""The relay's horizon: the highest outbox position below which no row can still appear.

Positions come from a sequence when a row is INSERTed, not when its transaction commits: a
transaction may take position 10, stay open, and commit after another one committed 11. A relay
that sent 11 as soon as it saw it would let it overtake 10 (for one order, `funds.released` before
`funds.held`). So the relay sends only rows at or below the horizon H: every position up to H is
visible to it, or never will be (its transaction rolled back).

How H is found, under PostgreSQL's rules:
1. read V, the sequence's last value (a sequence without a cache hands its values out in time order);
2. then read W, the open transactions holding the outbox table's ROW EXCLUSIVE lock. An INSERT
   takes that lock before it evaluates its defaults and keeps it until its transaction ends, so a
   transaction that took a position up to V took the lock before (1): if it is still open at (2),
   it is in W;
3. once a later read finds none of W still holding the lock, each of them has ended, so every
   position up to V has committed (visible to any statement that starts then) or never will: H = V.
One read per round settles the earlier candidates and starts the next. A row thus waits for the
transactions that were writing the outbox when it could first be sent (a slow one holds every key
back: nothing tells which keys its rows have), and not for other transactions.

Transaction ids alone would not do: a snapshot's xmax is the last *completed* id + 1, so a running
transaction with a newer id is neither in its xip list nor below its xmin, and an INSERT takes its
position before its transaction id.
"""

from typing import Any

# Candidates kept while their writers are open; past it the newest is replaced (that only delays).
MAX_CANDIDATES = 64

# V, then W, in one round trip: statements sent together run in order (V kept in a setting of the session).
_LOOK = """
    SELECT set_config(
        'saga.outbox_last_position',
        coalesce(pg_sequence_last_value(pg_get_serial_sequence(%(table)s, 'position')::regclass), 0)::text,
        false
    );
    SELECT current_setting('saga.outbox_last_position')::bigint, array(
        SELECT DISTINCT virtualtransaction::text FROM pg_locks
        WHERE locktype = 'relation' AND relation = %(table)s::regclass AND mode = 'RowExclusiveLock'
          AND pid <> pg_backend_pid()
    )
"""


class Horizon:
    """Positions up to `settled` are settled: committed and visible, or never to be."""

    def __init__(self, table: str):
        self.table = table
        self.settled = 0
        self._candidates: list[tuple[int, frozenset[str]]] = []  # (V, W) not settled yet

    @property
    def waiting(self) -> bool:
        """Whether positions above the horizon wait for writers to end."""
        return bool(self._candidates)

    def advance(self, cursor: Any) -> int:
        """Read V, then W, settle what can be; return the horizon."""
        cursor.execute(_LOOK, {"table": self.table})
        last, vxids = cursor.fetchone()
        writers = frozenset(vxids)
        if last > self.settled:
            del self._candidates[MAX_CANDIDATES - 1 :]
            self._candidates.append((last, writers))
        ended = [position for position, waited in self._candidates if not waited & writers]
        if ended:
            self.settled = max(self.settled, *ended)
            self._candidates = [c for c in self._candidates if c[0] > self.settled]
        return self.settled
