"""API conventions shared by every context: permissions, errors, conflicts, strict JSON fields."""

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, ClassVar

from django import forms
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.urls import Resolver404, resolve
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_field
from drf_standardized_errors import formatter, handler
from drf_standardized_errors.types import VALIDATION_ERROR, Error, ErrorResponse
from rest_framework import exceptions, permissions, serializers, status, viewsets
from rest_framework.fields import get_error_detail
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.crud import StillReferenced
from common.money import MAX_DIGITS, PLACES
from common.parsers import RequestTooLarge
from saga.core.connections import CONNECTION_ERRORS, drop_dead_connection, on_live_connection
from saga.operator.rest import TEXT_PATTERN, UUID_PATTERN, Conflict, Text, conflicts_as_409

__all__ = [
    "TEXT_PATTERN",
    "UUID_PATTERN",
    "Conflict",
    "CrudServices",
    "DatabaseUnavailable",
    "ErrorFormatter",
    "ExceptionHandler",
    "ServiceViewSet",
    "Text",
    "conflicts_as_409",
    "on_live_connection",
]

log = logging.getLogger(__name__)

# Seconds a client is asked to wait (Retry-After) when the database is away.
RETRY_AFTER_SECONDS = 1


class DatabaseUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable; try again shortly."
    default_code = "database_unavailable"
    wait = RETRY_AFTER_SECONDS  # the handler turns `wait` into Retry-After


class ExceptionHandler(handler.ExceptionHandler):
    """drf-standardized-errors' handler, answering what the shop turns into a 4xx or 503 besides
    DRF's own exceptions.

    Django validation errors and out-of-range values that slip past a serializer become 400s
    instead of 500s; a lost or unreachable database is a 503 with Retry-After (the connection,
    if dead, is dropped at once, so the client's retry gets a new one).
    """

    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, DjangoValidationError):
            return exceptions.ValidationError(get_error_detail(exc))  # its codes kept
        if isinstance(exc, CONNECTION_ERRORS):
            log.warning("database unavailable under %s: %s", self.context.get("request"), str(exc).strip())
            drop_dead_connection()
            return DatabaseUnavailable()
        if isinstance(exc, RequestDataTooBig):  # request.body past DATA_UPLOAD_MAX_MEMORY_SIZE
            return RequestTooLarge(f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")
        if isinstance(exc, exceptions.UnsupportedMediaType):
            # Bad input answers 400 throughout the API, a body of the wrong type included.
            return exceptions.ParseError(
                f"{exc.detail} Send JSON (Content-Type: application/json).", code="unsupported_media_type"
            )
        if isinstance(exc, StillReferenced):
            return Conflict(str(exc), code="still_referenced")
        if isinstance(exc, DataError):
            return exceptions.ValidationError("A value is out of range.", code="out_of_range")
        return super().convert_known_exceptions(exc)  # Django's Http404 and PermissionDenied

    def should_not_handle(self, exc: Exception) -> bool:
        # Anything else is a bug: Django answers it with its 500 and logs it, as it would without DRF.
        return not isinstance(exc, exceptions.APIException)

    def report_exception(self, exc: exceptions.APIException, response: Response) -> None:
        """Every exception answered here is an answer (a 503 included), not a crash: Django logs
        the response like any other, without a traceback or the got_request_exception signal."""


class ErrorFormatter(formatter.ExceptionFormatter):
    """drf-standardized-errors' {type, errors: [{code, detail, attr}]} (attr: the field's name, a
    dotted path such as items.0.quantity; null for an error about no field), with the contract's
    top-level `detail` and `code`: the error itself, or for a validation error `invalid` and every
    field error in one sentence. The schema's `Error` (common/schema.py) describes it."""

    def get_errors(self) -> list[Error]:
        # Every error has a code: a Django ValidationError raised without one has the exception's.
        default = self.exc.default_code
        errors = [Error(error.code or default, error.detail, error.attr) for error in super().get_errors()]
        return errors or [Error(default, str(self.exc.default_detail), None)]

    def format_error_response(self, error_response: ErrorResponse) -> dict[str, Any]:
        errors = error_response.errors
        if error_response.type == VALIDATION_ERROR:
            detail = " ".join(f"{error.attr}: {error.detail}" if error.attr else error.detail for error in errors)
            code = exceptions.ValidationError.default_code
        else:
            detail, code = errors[0].detail, errors[0].code
        return {"type": error_response.type, "detail": detail, "code": code, "errors": [asdict(e) for e in errors]}


@dataclass(frozen=True)
class CrudServices:
    """A context's services for one resource, in the shape ServiceViewSet calls them."""

    create: Callable[[dict], Any]
    update: Callable[[Any, dict], Any]
    delete: Callable[[Any], None]


@contextmanager
def refusals_as_409(code: str = "conflict") -> Iterator[None]:
    """A service that refuses input its serializer accepted (a taken sku, a balance below the
    funds held) refuses it for the state the data is in: 409, not 400. The serializers check
    everything about a request that does not depend on the data, and the schema says so."""
    try:
        yield
    except DjangoValidationError as refusal:
        raise Conflict(" ".join(refusal.messages), code=code) from refusal


class ServiceViewSet(viewsets.ModelViewSet):
    """CRUD over a context's services: an input serializer validates, a service writes, an
    output serializer answers. What a service refuses after validation is a 409."""

    lookup_value_regex = UUID_PATTERN
    # What a 409 of an action means, for the schema (common/schema.py).
    schema_conflicts: ClassVar[dict[str, str]] = {}
    services: CrudServices
    input_serializer_class: type[serializers.Serializer]
    output_serializer_class: type[serializers.Serializer]

    def get_serializer_class(self) -> type[serializers.Serializer]:
        writing = self.action in ("create", "update", "partial_update")
        return self.input_serializer_class if writing else self.output_serializer_class

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self._validated(request.data)
        with refusals_as_409():
            instance = self.services.create(data)
        return Response(self.output_serializer_class(instance).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        pk = self.get_object().pk
        data = self._validated(request.data, partial=kwargs.get("partial", False))
        with refusals_as_409():
            instance = self.services.update(pk, data)
        return Response(self.output_serializer_class(instance).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.services.delete(self.get_object().pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _validated(self, data: Any, partial: bool = False) -> dict:
        serializer = self.input_serializer_class(data=data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


# --- JSON fields that take what the schema says, and nothing else --------------------------------
#
# DRF's fields are lenient: a CharField takes 5 as "5" and trims " a " to "a", an IntegerField takes
# "5" and 5.0, a BooleanField takes "yes" and 1, a DecimalField takes " 1e3 ", a UUIDField takes 32
# hex digits without dashes. The schema promises a JSON string, integer, boolean or a dashed UUID;
# these fields take exactly that, so that a client generated from /api/schema/ and the API agree.

DASHED_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_WHOLE_DIGITS = MAX_DIGITS - PLACES
# Amounts of money: a decimal string, no sign, exponent, spaces or leading zeros, at most two places.
MONEY_PATTERN = rf"^(?:0|[1-9]\d{{0,{_WHOLE_DIGITS - 1}}})(?:\.\d{{1,{PLACES}}})?$"
POSITIVE_MONEY_PATTERN = rf"^(?:[1-9]\d{{0,{_WHOLE_DIGITS - 1}}}(?:\.\d{{1,{PLACES}}})?|0\.(?:0[1-9]|[1-9]\d?))$"
# An amount written as the patterns want it, but with more whole digits than an amount has.
_TOO_MANY_WHOLE_DIGITS = rf"^[1-9]\d{{{_WHOLE_DIGITS},}}(?:\.\d{{1,{PLACES}}})?$"
LARGEST_AMOUNT = Decimal(10) ** _WHOLE_DIGITS - Decimal(1).scaleb(-PLACES)


class Email(serializers.EmailField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        kwargs.setdefault("max_length", 254)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return data


class Integer(serializers.IntegerField):
    """A JSON integer (2.0 is one, as JSON Schema has it; "2" and true are not)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if isinstance(data, float) and not data.is_integer():
            self.fail("invalid")
        return int(data)


class Boolean(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class UUID(serializers.UUIDField):
    """A UUID in its dashed form, as `format: uuid` has it."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str) or not DASHED_UUID.fullmatch(data):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "format": "decimal", "pattern": MONEY_PATTERN, "example": "25.00"})
class Money(serializers.DecimalField):
    """An amount of money in a request: a JSON string such as "25", "25.5" or "25.50", not negative."""

    pattern = MONEY_PATTERN
    default_error_messages: ClassVar[dict[str, Any]] = {
        "invalid": 'Send an amount of money as a string such as "25.00": digits, no sign, exponent, spaces or '
        "leading zeros, at most two decimal places.",
        "max_value": "Send an amount of at most {max_value}.",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=MAX_DIGITS, decimal_places=PLACES, **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and re.fullmatch(_TOO_MANY_WHOLE_DIGITS, data):
            self.fail("max_value", max_value=LARGEST_AMOUNT)
        if not isinstance(data, str) or not re.fullmatch(self.pattern, data):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "format": "decimal", "pattern": POSITIVE_MONEY_PATTERN, "example": "25.00"})
class PositiveMoney(Money):
    """An amount of money above zero."""

    pattern = POSITIVE_MONEY_PATTERN
    default_error_messages: ClassVar[dict[str, Any]] = {
        "invalid": 'Send an amount above zero as a string such as "25.00", at most two decimal places.'
    }


# --- query parameters ------------------------------------------------------------------------------


class _StrictBooleanField(forms.NullBooleanField):
    """`true` or `false`, nothing else (django-filter's BooleanFilter ignores `?blocked=null`)."""

    widget = forms.TextInput

    def to_python(self, value: Any) -> Any:  # True, False, or None when not sent
        if value is None:
            return None
        if value in ("true", "false"):
            return value == "true"
        raise forms.ValidationError("Must be true or false.", code="invalid")


class _PresentWidget(forms.TextInput):
    """Tells a parameter sent empty (`?blocked=`) from one not sent."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        return data.get(name) if name in data else None


class StrictBooleanFilter(filters.BooleanFilter):
    field_class = _StrictBooleanField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", _PresentWidget)
        super().__init__(*args, **kwargs)


class StrictFilterSet(filters.FilterSet):
    """Query parameters as the schema types them: a UUID, choice or boolean parameter sent empty
    (`?customer_id=`) is refused, not ignored. (An empty plain string is a string: it filters nothing.)"""

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name, declared in self.filters.items():
            if type(declared) is not filters.CharFilter and (self.data or {}).get(name) == "":
                self.form.errors.pop(name, None)  # what the field said of "": this says it better
                self.form.add_error(name, forms.ValidationError("This parameter may not be empty.", code="blank"))
                valid = False
        return valid


# --- what the API answers for paths it does not have ---------------------------------------------


@extend_schema(exclude=True)
class NotFoundView(APIView):
    """Any method on any /api/ path that no route matches (odd characters, a malformed id): the
    API's JSON 404, not Django's HTML page; 401 first without credentials, like every endpoint."""

    permission_classes = (permissions.IsAuthenticated,)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        raise exceptions.NotFound()

    def handle_exception(self, exc: Exception) -> Response:
        # What APPEND_SLASH did before this view matched everything: /api/docs -> /api/docs/.
        path = self.request.path_info
        if not path.endswith("/"):
            try:
                target = getattr(resolve(path + "/").func, "view_class", None)
            except Resolver404:
                target = NotFoundView
            if target is not NotFoundView:
                location = self.request.get_full_path(force_append_slash=True)
                return Response(status=status.HTTP_301_MOVED_PERMANENTLY, headers={"Location": location})
        return super().handle_exception(exc)
