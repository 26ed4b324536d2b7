"""Small helpers for the plain create / update / delete services of every context.

A row is validated before it is saved: each of its model's constraints (`Meta.constraints`)
refuses with its own `violation_error_message`, on the field a user enters. The database's
constraints stay the last line, for what a check cannot see: a row another transaction commits
between the check and the save (two customers created at once with one email).
"""

from collections.abc import Iterable
from typing import Any, TypeVar

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, models, router, transaction
from django.db.models import BaseConstraint, CheckConstraint, ProtectedError, Q, RestrictedError, UniqueConstraint
from django.db.models.deletion import Collector

M = TypeVar("M", bound=models.Model)


class StillReferenced(Exception):
    """The row is referenced by business records (holds, reservations) and must stay."""


def model_save(instance: M) -> M:
    """Save the row once its constraints hold (a ValidationError if one does not). A save the
    database refuses is checked again: the row that won the race is committed by then, so the
    refusal is the one the check would have made."""
    model_validate(instance)
    try:
        with transaction.atomic(using=router.db_for_write(type(instance), instance=instance)):
            instance.save()
    except IntegrityError:
        model_validate(instance)
        raise
    return instance


def model_update(instance: M, *, data: dict[str, Any], fields: set[str]) -> M:
    for name, value in data.items():
        if name in fields:
            setattr(instance, name, value)
    return model_save(instance)


def model_validate(instance: models.Model) -> None:
    """Check the row against its model's constraints, as the database would (one query each)."""
    model = type(instance)
    using = router.db_for_write(model, instance=instance)
    refusals: dict[str, list[ValidationError]] = {}
    for constraint in model._meta.constraints:
        try:
            constraint.validate(model, instance, using=using)  # type: ignore[attr-defined]  # Django's, not the stubs'
        except ValidationError as refusal:
            refusals.setdefault(_field_of(model, constraint), []).append(refusal)
    if refusals:
        raise ValidationError(refusals)


def _field_of(model: type[models.Model], constraint: BaseConstraint) -> str:
    """Where a refusal shows: on the one field the constraint names that a user enters (a balance
    below the funds held shows on `balance`; `reserved` is the services' own), else on the row."""
    entered = {name for name in _names(constraint) if model._meta.get_field(name).editable}
    return entered.pop() if len(entered) == 1 else NON_FIELD_ERRORS


def _names(constraint: BaseConstraint) -> Iterable[str]:
    if isinstance(constraint, CheckConstraint):
        return Q(constraint.condition).referenced_base_fields
    if isinstance(constraint, UniqueConstraint):  # of fields, or of expressions such as Lower("email")
        return {*constraint.fields, *Q(*constraint.expressions).referenced_base_fields}
    return ()


def model_delete(instance: models.Model) -> None:
    try:
        with transaction.atomic(using=router.db_for_write(type(instance), instance=instance)):
            instance.delete()
    except ProtectedError as error:
        raise _still_referenced(instance) from error


def delete_refusal(instance: models.Model) -> StillReferenced | None:
    """Why `model_delete` would refuse to delete `instance`, found without deleting it (for a
    confirmation page), or None."""
    collector = Collector(using=router.db_for_write(type(instance)))
    try:
        collector.collect([instance])
    except (ProtectedError, RestrictedError):
        return _still_referenced(instance)
    return None


def _still_referenced(instance: models.Model) -> StillReferenced:
    return StillReferenced(f"{instance._meta.verbose_name} {instance.pk} is referenced by orders")
