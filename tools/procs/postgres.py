"""PostgreSQL for a harness, over psycopg2 (no Django): connections from a URL, a process's own
`application_name`, a database of a run's own."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg2


def with_application_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "application_name"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("application_name", name)])))


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def connect(url: str) -> psycopg2.extensions.connection:
    """An autocommit connection; the URL's query gives further parameters (connect_timeout=2, ...)."""
    parts = urlsplit(url)
    params: dict[str, Any] = {
        "host": parts.hostname,
        "port": parts.port or 5432,
        "user": parts.username,
        "password": parts.password,
        "dbname": parts.path.lstrip("/"),
        "connect_timeout": 10,
        **dict(parse_qsl(parts.query)),
    }
    conn = psycopg2.connect(**params)
    conn.autocommit = True
    return conn


def execute(url: str, sql: str) -> None:
    """One statement on a connection of its own (CREATE DATABASE runs in no transaction)."""
    with contextlib.closing(connect(url)) as conn, conn.cursor() as cursor:
        cursor.execute(sql)


@contextlib.contextmanager
def run_database(server_url: str, name: str, *, keep: bool, log: Callable[[str], None]) -> Iterator[str]:
    """A database of a run's own on the server, so that a run never touches other data, for the
    run's length (or kept, for inspection); yields its URL."""
    execute(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url, name)
    finally:
        if keep:
            log(f"kept the database {name}")
        else:
            execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
