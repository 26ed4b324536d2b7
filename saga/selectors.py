"""Queries of the saga engine."""

from uuid import UUID

from django.db.models import QuerySet

from .models import SagaInstance


def saga_list() -> QuerySet[SagaInstance]:
    return SagaInstance.objects.prefetch_related("steps")


def saga_get(*, saga_id: UUID) -> SagaInstance | None:
    return saga_list().filter(pk=saga_id).first()
