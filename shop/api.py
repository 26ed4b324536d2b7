"""API conventions shared by every context: permissions, errors, conflicts."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from saga.rest import UUID_PATTERN, Conflict, conflicts_as_409
from shop.crud import StillReferenced

__all__ = ["UUID_PATTERN", "Conflict", "CrudServices", "ServiceViewSet", "conflicts_as_409", "exception_handler"]


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, plus a machine-readable `code` beside every `detail`.

    Django validation errors and out-of-range values that slip past a serializer become 400s
    instead of 500s.
    """
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        # Bad input answers 400 throughout the API, a body of the wrong type included.
        exc = exceptions.ParseError(
            f"{exc.detail} Send JSON (Content-Type: application/json).", code="unsupported_media_type"
        )
    elif isinstance(exc, StillReferenced):
        exc = Conflict(str(exc), code="still_referenced")
    elif isinstance(exc, DataError):
        exc = exceptions.ValidationError({"detail": "A value is out of range.", "code": "invalid"})
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else None
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data.setdefault("code", code)
    return response


@dataclass(frozen=True)
class CrudServices:
    """A context's services for one resource, in the shape ServiceViewSet calls them."""

    create: Callable[[dict], Any]
    update: Callable[[Any, dict], Any]
    delete: Callable[[Any], None]


class ServiceViewSet(viewsets.ModelViewSet):
    """CRUD over a context's services: an input serializer validates, a service writes, an
    output serializer answers."""

    lookup_value_regex = UUID_PATTERN
    services: CrudServices
    input_serializer_class: type[serializers.Serializer]
    output_serializer_class: type[serializers.Serializer]

    def get_serializer_class(self) -> type[serializers.Serializer]:
        writing = self.action in ("create", "update", "partial_update")
        return self.input_serializer_class if writing else self.output_serializer_class

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.services.create(self._validated(request.data))
        return Response(self.output_serializer_class(instance).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        pk = self.get_object().pk
        data = self._validated(request.data, partial=kwargs.get("partial", False))
        return Response(self.output_serializer_class(self.services.update(pk, data)).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.services.delete(self.get_object().pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _validated(self, data: Any, partial: bool = False) -> dict:
        serializer = self.input_serializer_class(data=data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data
