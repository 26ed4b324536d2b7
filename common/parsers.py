"""The API's only request parser: JSON, strictly.

DRF's JSONParser hands a body nested thousands of levels deep to `json.load`, whose RecursionError
is no ValueError and so escapes as a 500; it takes the last of duplicated keys without a word; and
it accepts strings PostgreSQL cannot store (lone surrogates). This one refuses each of them with a
400 in the API's error shape, before any view sees the data. (A body over DATA_UPLOAD_MAX_MEMORY_SIZE
is refused before parsing, when DRF reads request.body: common.api's handler answers 413; the parser
checks the size too, for a stream it is handed directly.)
"""

import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import exceptions, parsers, status

# No request of the API nests deeper than 3 (an order, its items, an item); the margin is for
# clients that send extra, ignored properties.
MAX_DEPTH = 64


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicated key {key!r}")
        obj[key] = value
    return obj


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _depth(data: Any) -> int:
    """The nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                break
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return deepest


class JSONParser(parsers.JSONParser):
    """JSON with a depth limit, no duplicated keys, no NaN or Infinity, only storable text, and a size limit."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        parser_context = parser_context or {}
        limit: int | None = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(raw.decode(encoding), object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        except RecursionError:
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.") from None
        except ValueError as error:  # malformed JSON, bad encoding, duplicated keys, too many digits
            raise exceptions.ParseError(f"JSON parse error - {error}") from None
        if _depth(data) > MAX_DEPTH:
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.")
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise exceptions.ParseError("JSON parse error - a string holds a lone surrogate.") from None
        return data
