"""Rows written by statements prepared here rather than built by the ORM, on the paths every saga
takes at every step (the query compiler would build the same statement thousands of times). Each
value is prepared by its model field, as Model.save() prepares it."""

from collections.abc import Sequence

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model


def rows_insert(objects: Sequence[Model], *, skip_conflicts: bool = False, using: str = DEFAULT_DB_ALIAS) -> int:
    """INSERT unsaved objects of one model in one statement, in the database `using`; an auto field
    is the database's. `skip_conflicts`: a row whose key is taken is left out (ON CONFLICT DO
    NOTHING). Returns how many rows were inserted."""
    if not objects:
        return 0
    into = connections[using]
    meta = objects[0]._meta
    fields = [field for field in meta.concrete_fields if field is not meta.auto_field]
    row = f"({', '.join(['%s'] * len(fields))})"
    sql = (
        f"INSERT INTO {into.ops.quote_name(meta.db_table)} ({_columns(fields, into)}) "
        f"VALUES {', '.join([row] * len(objects))}{' ON CONFLICT DO NOTHING' if skip_conflicts else ''}"
    )
    values = [field.get_db_prep_save(field.pre_save(obj, add=True), into) for obj in objects for field in fields]
    with into.cursor() as cursor:
        cursor.execute(sql, values)
        inserted = cursor.rowcount
    for obj in objects:
        obj._state.adding, obj._state.db = False, into.alias
    return inserted


def rows_update(obj: Model, fields: Sequence[Field]) -> None:
    """UPDATE `fields` of a saved object, by its primary key."""
    meta = obj._meta
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
    values = [field.get_db_prep_save(field.pre_save(obj, add=False), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, obj.pk])


def _columns(fields: Sequence[Field], into: BaseDatabaseWrapper) -> str:
    return ", ".join(into.ops.quote_name(field.column) for field in fields)
