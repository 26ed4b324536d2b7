"""Every URL pattern of the project as a concrete path: the security tests walk these, so an
endpoint added tomorrow is checked without anyone listing it."""

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from re import _compiler as regex_compiler  # `re`'s own parser and compiler (sre_parse and sre_compile
from re import _parser as regex_parser  # before Python 3.11): a pattern's parts, and a regex of one part
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, resolve

SAMPLE_ID = str(uuid.UUID(int=0x5EC))
# Named groups whose shortest match would not do, used where the group's regex matches them: DRF's
# format suffix must name a renderer; the admin's catch-all must not be the admin's index.
SAMPLES = {"pk": (SAMPLE_ID,), "format": ("json", ".json"), "url": ("no-such-page/",)}


@dataclass(frozen=True)
class Endpoint:
    path: str
    namespace: str  # "admin", "rest_framework", "" for the project's own
    name: str | None
    callback: Callable[..., Any]

    @property
    def view_class(self) -> type | None:
        return getattr(self.callback, "cls", None) or getattr(self.callback, "view_class", None)


def sample(regex: str) -> str:
    """The shortest text the regex matches (named groups in SAMPLES get their sample)."""
    parsed = regex_parser.parse(regex)
    names = {index: name for name, index in parsed.state.groupdict.items()}
    return _emit(parsed, names, regex)


def _emit(items: Any, names: dict[int, str], regex: str) -> str:
    out = []
    for op, av in items:
        kind = str(op)
        if kind == "LITERAL":
            out.append(chr(av))
        elif kind in ("ANY", "NOT_LITERAL"):
            out.append("x")
        elif kind == "IN":
            out.append(_from_set(av))
        elif kind == "BRANCH":
            out.append(_emit(av[1][0], names, regex))
        elif kind == "SUBPATTERN":
            group, _, _, sub = av
            group_regex = regex_compiler.compile(sub)
            fitting = [value for value in SAMPLES.get(names.get(group, ""), ()) if group_regex.fullmatch(value)]
            out.append(fitting[0] if fitting else _emit(sub, names, regex))
        elif kind in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, _, sub = av
            out.append(_emit(sub, names, regex) * low)
        elif kind == "AT":
            continue
        else:
            raise ValueError(f"cannot make a sample of {kind} in {regex!r}: add its group to SAMPLES")
    return "".join(out)


def _from_set(items: Any) -> str:
    op, av = items[0]
    kind = str(op)
    if kind == "NEGATE":
        return "x"
    if kind == "LITERAL":
        return chr(av)
    if kind == "RANGE":
        return chr(av[0])
    if kind == "CATEGORY":
        return "0" if "DIGIT" in str(av) else "x"
    raise ValueError(f"cannot make a sample of the set {items!r}")


def endpoints() -> list[Endpoint]:
    """Each URL pattern once, as a path that resolves to that very pattern."""
    found = list(_walk(get_resolver(), "/", ()))
    for endpoint in found:
        match = resolve(endpoint.path)
        assert match.func is endpoint.callback, (
            f"the sample path {endpoint.path} of {endpoint.namespace}:{endpoint.name} resolves to another view "
            f"({match.view_name}); give its group a value in SAMPLES"
        )
    return found


def _walk(resolver: URLResolver, prefix: str, namespaces: tuple[str, ...]) -> Iterator[Endpoint]:
    for entry in resolver.url_patterns:
        here = prefix + sample(entry.pattern.regex.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry, here, (*namespaces, entry.namespace) if entry.namespace else namespaces)
        elif isinstance(entry, URLPattern):
            yield Endpoint(here, ":".join(namespaces), entry.name, entry.callback)
