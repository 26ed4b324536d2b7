"""The few REST helpers the engine's API needs, its own so that it depends on no project."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.validators import RegexValidator
from rest_framework import exceptions, serializers, status

UUID_PATTERN = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"

MAX_IDEMPOTENCY_KEY = 255
# Visible ASCII, spaces inside only: what an HTTP header carries unchanged.
IDEMPOTENCY_KEY_PATTERN = rf"^[!-~](?:[ -~]{{0,{MAX_IDEMPOTENCY_KEY - 2}}}[!-~])?$"

# Text: not blank (a character other than space and the ASCII controls), and no NUL, which
# PostgreSQL cannot store. Explicit ranges, not \s, which Python's re and the schema's ECMA regexes
# read differently.
TEXT_PATTERN = r"\A[^\x00]*[^\x00-\x20\x7f][^\x00]*\Z"
NO_NUL_PATTERN = r"\A[^\x00]*\Z"


class _PatternBesideNul(RegexValidator):
    """A Text's pattern, checked on the text without its NULs: CharField's own validator refuses a
    NUL and says so, and a name with a NUL in it is not also "blank". (The schema shows the whole
    pattern, NUL excluded, read off this RegexValidator.)"""

    def __call__(self, value: Any) -> None:
        super().__call__(value.replace("\x00", ""))


class Text(serializers.CharField):
    """A JSON string, kept as sent (DRF's CharField takes 5 as "5" and trims " a " to "a", which the
    schema does not say): not blank unless allow_blank, no NUL; or matching `pattern`. The schema
    shows the pattern, so a client generated from it sends what is taken."""

    def __init__(self, *, pattern: str = TEXT_PATTERN, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        if self.allow_blank and pattern == TEXT_PATTERN:
            pattern = NO_NUL_PATTERN
        blank = str(self.error_messages["blank"])  # the field's own words for a blank text
        message = blank if pattern == TEXT_PATTERN else "This value does not match " + pattern
        self.validators.append(_PatternBesideNul(pattern, message=message))

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return data


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
