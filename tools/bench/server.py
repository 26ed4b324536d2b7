"""What the database server itself counts: commits (pg_stat_database) and statements
(pg_stat_statements) of the bench database, read on a connection of the bench's own whose
transactions and statements are left out of the figures. No Django."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg2
import psycopg2.errors

from tools.procs import connect

# The observer's own statements carry this mark, and are left out of the statement counts.
MARK = "/* bench-observer */"
# Backends report their counters at most once a second (PostgreSQL 15+); wait that out before reading.
STATS_FLUSH_SECONDS = 1.5
SAVEPOINT_PREFIXES = ("SAVEPOINT", "RELEASE", "ROLLBACK TO")
Params = Sequence[Any] | Mapping[str, Any] | None
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "START TRANSACTION", "END")


@dataclass(frozen=True)
class Counters:
    commits: int
    statements: int | None  # None: pg_stat_statements is not available on this server
    savepoints: int | None

    def minus(self, before: Counters, own_transactions: int) -> Counters:
        def delta(after: int | None, earlier: int | None) -> int | None:
            return None if after is None or earlier is None else after - earlier

        return Counters(
            self.commits - before.commits - own_transactions,
            delta(self.statements, before.statements),
            delta(self.savepoints, before.savepoints),
        )


class Observer:
    """One autocommit connection to the bench database: polls and counter snapshots. Each query
    is one transaction, counted, so that snapshots can subtract the observer's own. The counters
    add up the `counted` databases of the server (default: the bench database alone; in the
    services topology, every context's), which the server's statistics views show from any of them."""

    def __init__(self, database_url: str, counted: Sequence[str] = ()):
        self.conn = connect(database_url)
        self.transactions = 0
        self.statements_available = self._enable_statements()
        self.counted = list(counted) or [str(self.value("SELECT current_database()"))]

    def _enable_statements(self) -> bool:
        try:
            self.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            self.query("SELECT 1 FROM pg_stat_statements LIMIT 1")
        except psycopg2.Error:  # not preloaded on this server, or no right to create it: statements are n/a
            return False
        return True

    def query(self, sql: str, params: Params = None) -> list[tuple]:
        self.transactions += 1
        with self.conn.cursor() as cursor:
            cursor.execute(f"{MARK} {sql}", params)
            return cursor.fetchall() if cursor.description else []

    def value(self, sql: str, params: Params = None) -> object:
        return self.query(sql, params)[0][0]

    def counters(self) -> Counters:
        time.sleep(STATS_FLUSH_SECONDS)
        commits_sql = "SELECT sum(xact_commit) FROM pg_stat_database WHERE datname = ANY(%s)"
        commits = int(str(self.value(commits_sql, [self.counted])))
        if not self.statements_available:
            return Counters(commits, None, None)
        rows = self.query(
            "SELECT query, calls FROM pg_stat_statements "
            "WHERE dbid IN (SELECT oid FROM pg_database WHERE datname = ANY(%s)) AND query NOT LIKE %s",
            [self.counted, f"{MARK}%"],
        )
        statements = sum(calls for query, calls in rows if not _starts(query, TRANSACTION_CONTROL))
        savepoints = sum(calls for query, calls in rows if _starts(query, SAVEPOINT_PREFIXES))
        return Counters(commits, statements, savepoints)

    def commits_by_database(self) -> dict[str, int]:
        """Commits so far in each counted database (the observer's own included: see `transactions`)."""
        time.sleep(STATS_FLUSH_SECONDS)
        rows = self.query("SELECT datname, xact_commit FROM pg_stat_database WHERE datname = ANY(%s)", [self.counted])
        return {name: int(commits) for name, commits in rows}

    def server_version(self) -> str:
        return str(self.value("SHOW server_version"))

    def close(self) -> None:
        self.conn.close()


def _starts(query: str, prefixes: tuple[str, ...]) -> bool:
    return query.lstrip().upper().startswith(prefixes)
