"""The OpenAPI schema at /api/schema/: drf-spectacular's, made to say every answer an operation can
give besides its success, so that a client generated from it is right.

Every operation that reads the database may answer 503 (database unavailable, with Retry-After);
one with a body or query parameters 400; one with a body 413; one behind authentication 401 and
403; one on a resource's path, or paginated, 404; one with throttles 429. A view names its 409s
(`schema_conflicts`, or `extend_schema`), since only it knows which states refuse it. Every one
of them has the one error shape, `Error` (what common.api's handler answers).
"""

from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse, extend_schema_serializer
from rest_framework import serializers
from rest_framework.throttling import ScopedRateThrottle

from saga.operator.rest import ErrorOutput


class ErrorItem(serializers.Serializer):
    code = serializers.CharField(help_text="What is wrong, for programs: invalid, blank, max_value, not_found, ...")
    detail = serializers.CharField(help_text="What is wrong, for people.")
    attr = serializers.CharField(
        allow_null=True,
        help_text="The field (or header, or query parameter) it is about: a dotted path inside lists and "
        "objects, such as items.0.quantity, or FIELD.non_field_errors for a rule over several of its fields; "
        "null when the error is about no field.",
    )


@extend_schema_serializer(component_name="Error")
class ErrorBody(ErrorOutput):
    """The body of every error answer (4xx and 503). `detail` and `code` say what went wrong; a
    validation error (code invalid) has an item in `errors` per field error, any other error one
    item equal to `detail` and `code`."""

    type = serializers.ChoiceField(choices=["validation_error", "client_error", "server_error"])
    detail = serializers.CharField(help_text="What went wrong, for people (a validation error: each field error).")
    code = serializers.CharField(help_text="What went wrong, for programs: invalid, parse_error, not_found, ...")
    errors = ErrorItem(many=True)  # type: ignore[assignment]  # a declared field: DRF moves it off the class


def _error_body(response: Any) -> Any:
    """The engine declares its errors as {detail, code} (ErrorOutput); the shop answers them whole."""
    if isinstance(response, OpenApiResponse) and response.response is ErrorOutput:
        return OpenApiResponse(ErrorBody, response.description, response.examples)
    return ErrorBody if response is ErrorOutput else response


def _retry_after(description: str) -> dict[str, Any]:
    return {"Retry-After": {"schema": {"type": "integer", "minimum": 0}, "required": True, "description": description}}


class AutoSchema(openapi.AutoSchema):
    def get_request_serializer(self) -> Any:
        # ServiceViewSet: the input serializer reads the body, the output serializer answers.
        serializer = getattr(self.view, "input_serializer_class", None)
        if serializer is not None and self.method in ("POST", "PUT", "PATCH"):
            return serializer
        return super().get_request_serializer()

    def get_response_serializers(self) -> Any:
        output = getattr(self.view, "output_serializer_class", None)
        if output is not None and self.method in ("POST", "PUT", "PATCH"):
            return output
        return super().get_response_serializers()

    def _get_response_for_code(self, serializer: Any, status_code: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return super()._get_response_for_code(_error_body(serializer), status_code, *args, **kwargs)

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code, response in self._error_responses().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        return responses

    def _get_response_headers_for_code(self, status_code: str, direction: Any = "response") -> dict[str, Any]:
        headers = super()._get_response_headers_for_code(status_code, direction)
        if status_code == "503" and self._reads_database():
            headers.update(_retry_after("Seconds to wait before trying again."))
        if status_code == "429":
            headers.update(_retry_after("Seconds until the rate limit lets a request through."))
        return headers

    def _reads_database(self) -> bool:
        return bool(getattr(self.view, "authentication_classes", ())) or hasattr(self.view, "queryset")

    def _throttled(self) -> bool:
        """A scoped throttle limits the creating requests of a view that names a scope (the
        project's throttle counts only those); any other throttle, every request."""
        throttles = self.view.get_throttles()
        scoped = any(isinstance(throttle, ScopedRateThrottle) for throttle in throttles)
        unscoped = any(not isinstance(throttle, ScopedRateThrottle) for throttle in throttles)
        has_scope = bool(getattr(self.view, "throttle_scope", None))
        return unscoped or (scoped and has_scope and self._is_create_operation())

    def _error_responses(self) -> dict[str, OpenApiResponse]:
        view = self.view
        errors: dict[str, OpenApiResponse] = {}
        body = self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None
        listing = self._is_list_view() and self._get_paginator() is not None
        if body or listing or self._get_filter_parameters():
            errors["400"] = OpenApiResponse(ErrorBody, "Invalid input (code invalid: each field error), or no JSON.")
        if view.get_authenticators():
            errors["401"] = OpenApiResponse(ErrorBody, "Not authenticated (no or a bad token).")
        if view.get_permissions():
            errors["403"] = OpenApiResponse(ErrorBody, "Authenticated, without the permission this needs.")
        if "{" in self.path or listing:
            errors["404"] = OpenApiResponse(ErrorBody, "No such resource (or no such page).")
        conflict = getattr(view, "schema_conflicts", {}).get(getattr(view, "action", None))
        if conflict:
            errors["409"] = OpenApiResponse(ErrorBody, conflict)
        if body:
            errors["413"] = OpenApiResponse(ErrorBody, "The body is larger than the API accepts.")
        if self._throttled():
            errors["429"] = OpenApiResponse(ErrorBody, "Too many requests; see Retry-After.")
        if self._reads_database():
            errors["503"] = OpenApiResponse(ErrorBody, "The database is unavailable; see Retry-After.")
        return errors


_EXACTLY_ONE: dict[str, tuple[str, ...]] = {}

S = TypeVar("S", bound=type)


def exactly_one_of(*fields: str) -> Callable[[S], S]:
    """A serializer whose `validate` wants exactly one of `fields`: the schema says so (oneOf)."""

    def register(serializer: S) -> S:
        _EXACTLY_ONE[serializer.__name__] = fields
        return serializer

    return register


def declare_exactly_one(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    schemas = result.get("components", {}).get("schemas", {})
    for name, fields in _EXACTLY_ONE.items():
        if name in schemas:
            schemas[name]["oneOf"] = [{"required": [field]} for field in fields]
    return result


def no_nul_in_query_text(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A text query parameter (`?email=`, `?sku=`) with a NUL in it is refused with 400, as Django's
    form fields refuse it (PostgreSQL stores no NUL); the schema says so."""
    for operations in result["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter["in"] == "query" and schema.get("type") == "string" and schema.keys() == {"type"}:
                    schema["pattern"] = "^[^\\u0000]*$"
    return result


# What a client can do next with what an answer gives it: OpenAPI links (operation, status) ->
# {link name: (target operation, {parameter: runtime expression})}. Clients and schemathesis'
# stateful phase follow them (create a customer, then read, change, delete it; place an order,
# then read it, accept or cancel it, look at its saga).
_BY_ID = "$response.body#/id"
LINKS: dict[tuple[str, str], dict[str, tuple[str, dict[str, str]]]] = {
    ("customers_create", "201"): {
        "GetCustomer": ("customers_retrieve", {"id": _BY_ID}),
        "UpdateCustomer": ("customers_update", {"id": _BY_ID}),
        "PatchCustomer": ("customers_partial_update", {"id": _BY_ID}),
        "DeleteCustomer": ("customers_destroy", {"id": _BY_ID}),
        "OrdersOfCustomer": ("orders_list", {"customer_id": _BY_ID}),
    },
    ("products_create", "201"): {
        "GetProduct": ("products_retrieve", {"id": _BY_ID}),
        "UpdateProduct": ("products_update", {"id": _BY_ID}),
        "PatchProduct": ("products_partial_update", {"id": _BY_ID}),
        "DeleteProduct": ("products_destroy", {"id": _BY_ID}),
    },
    ("orders_create", "202"): {
        "GetOrder": ("orders_retrieve", {"id": _BY_ID}),
        "GetOrderStatus": ("orders_status_retrieve", {"id": _BY_ID}),
        "AcceptOrder": ("orders_accept_create", {"id": _BY_ID}),
        "CancelOrder": ("orders_cancel_create", {"id": _BY_ID}),
        "GetSaga": ("sagas_retrieve", {"id": "$response.body#/saga_id"}),
        "RetrySaga": ("sagas_retry_create", {"id": "$response.body#/saga_id"}),
        "CompensateSaga": ("sagas_compensate_create", {"id": "$response.body#/saga_id"}),
    },
    ("orders_retrieve", "200"): {
        "GetSaga": ("sagas_retrieve", {"id": "$response.body#/saga_id"}),
    },
}


def add_links(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    for operations in result["paths"].values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                links = LINKS.get((operation.get("operationId", ""), status))
                if links:
                    response["links"] = {
                        name: {"operationId": target, "parameters": parameters}
                        for name, (target, parameters) in links.items()
                    }
    return result
