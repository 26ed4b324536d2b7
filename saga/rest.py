"""The few REST helpers the engine's API needs, its own so that it depends on no project."""

from collections.abc import Iterator
from contextlib import contextmanager

from rest_framework import exceptions, serializers, status

UUID_PATTERN = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class ErrorOutput(serializers.Serializer):
    """An error answer: what went wrong, and a machine-readable code for it."""

    detail = serializers.CharField()
    code = serializers.CharField()


@contextmanager
def conflicts_as_409(*errors: type[Exception], code: str) -> Iterator[None]:
    """Answer a domain conflict (wrong state, reused key) with 409 and a machine-readable code."""
    try:
        yield
    except errors as conflict:
        raise Conflict(str(conflict), code=code) from conflict
