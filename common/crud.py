"""Small helpers for the plain create / update / delete services of every context."""

from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, router, transaction
from django.db.models import ProtectedError, RestrictedError
from django.db.models.deletion import Collector

M = TypeVar("M", bound=models.Model)


class StillReferenced(Exception):
    """The row is referenced by business records (holds, reservations) and must stay."""


ConstraintMessages = dict[str, tuple[str, str]]  # constraint name -> (field, message)


def model_save(instance: M, *, constraint_messages: ConstraintMessages) -> M:
    """Save, turning a violated CHECK/UNIQUE constraint into a field-level ValidationError."""
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as error:
        for constraint, (field, message) in constraint_messages.items():
            if constraint in str(error):
                raise ValidationError({field: message}) from error
        raise
    return instance


def model_update(instance: M, *, data: dict[str, Any], fields: set[str], constraint_messages: ConstraintMessages) -> M:
    for name, value in data.items():
        if name in fields:
            setattr(instance, name, value)
    return model_save(instance, constraint_messages=constraint_messages)


def model_delete(instance: models.Model) -> None:
    try:
        with transaction.atomic():
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
