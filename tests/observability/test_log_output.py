"""Issue 24 (items 2, 4 and 12): what the shop's log shows, through the logging configuration of
the settings, in both formats, as a terminal sees it: an unhandled error once, as a plain
traceback without local variables; each HTTP request once; a failed attempt of a step as a
warning with its error and the saga's ids."""

import contextlib
import copy
import io
import logging
import threading
import urllib.error
import urllib.request
import uuid
from typing import TextIO

import pytest
from django.conf import settings as django_settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.log import configure_logging

from orders.saga import PLACE_ORDER
from saga.testing.harness import SagaHarness
from shop.urls import urlpatterns as shop_urlpatterns

from .log_lines import FORMATS, RETRIED_ONCE_THEN_COMPLETED, Line, parse

LOCAL_MARKER = "a-local-variable-that-must-not-reach-the-log"
IDS = ("saga_id", "order_id", "step", "attempt", "request_id")


def explode(request: HttpRequest) -> HttpResponse:
    # Locals as big as the admin's template context: a traceback with locals would print them all.
    context = {f"field{i}": f"{LOCAL_MARKER} {i}" for i in range(2000)}
    raise RuntimeError(f"boom with {len(context)} fields")


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello")


urlpatterns = [path("test/explode", explode), path("test/hello", hello), *shop_urlpatterns]


class Output:
    """What the log handlers wrote to stderr since the last look."""

    def __init__(self, format: str):
        self.format, self.stream = format, io.StringIO()

    def text(self) -> str:
        text = self.stream.getvalue()
        self.stream.seek(0)
        self.stream.truncate()
        return text


def configure(config: dict, stderr: TextIO) -> None:
    """As django.setup() does (Django's defaults, then settings.LOGGING), with the handlers made
    now writing to `stderr`."""
    with contextlib.redirect_stderr(stderr):
        configure_logging(django_settings.LOGGING_CONFIG, config)


@pytest.fixture(params=FORMATS)
def output(request):
    """Logging configured from settings.LOGGING, in one format, onto a stderr of the test's."""
    before = next(h.stream for h in logging.getLogger().handlers if type(h) is logging.StreamHandler)
    config = copy.deepcopy(django_settings.LOGGING)
    config["handlers"]["console"]["formatter"] = request.param
    out = Output(request.param)
    configure(config, out.stream)
    yield out
    configure(django_settings.LOGGING, before)


def parsed(out: Output, text: str) -> list[Line]:
    """Every line, which must all be the shop's format (in the console format, the lines of a
    traceback follow their error's line)."""
    lines: list[Line] = []
    for raw in text.splitlines():
        line = parse(out.format, raw)
        if line is None:
            in_traceback = out.format == "console" and lines and lines[-1].level == "error"
            assert in_traceback, f"not a line of the {out.format} format: {raw!r}"
            continue
        lines.append(line)
    return lines


@pytest.mark.urls(__name__)
def test_an_unhandled_error_is_logged_once_as_a_plain_traceback_without_locals(output, client, settings):
    settings.DEBUG = True  # as under `make run`, where Django's own console handler is on
    client.raise_request_exception = False
    assert client.get("/test/explode").status_code == 500
    text = output.text()

    assert LOCAL_MARKER not in text, "the traceback was rendered with the view's local variables"
    assert text.count("Traceback (most recent call last)") == 1, text[:3000]
    assert text.count("RuntimeError: boom with 2000 fields") == 1, text[:3000]
    assert len(text.splitlines()) < 100, f"{len(text.splitlines())} lines for one error"
    lines = parsed(output, text)
    errors = [line for line in lines if line.level == "error"]
    assert [e.event for e in errors] == ["Internal Server Error: /test/explode"]
    assert "request_id" in errors[0].fields
    if output.format == "json":
        # one field holding the formatted traceback
        exception = next(line for line in text.splitlines() if "Internal Server Error" in line)
        assert errors[0].fields["exception"].startswith("Traceback (most recent call last)"), exception
        assert errors[0].fields["exception"].count("\n") < 100
    # ... and the request itself, once.
    assert [line.event for line in lines if "/test/explode" in line.event] == [
        "Internal Server Error: /test/explode",
        "GET /test/explode 500",
    ]


@pytest.mark.urls(__name__)
def test_each_request_is_logged_once_under_the_development_server(output):
    """`make run` serves with runserver: its handler's own request line would say it again."""
    server = WSGIServer(("127.0.0.1", 0), WSGIRequestHandler)  # runserver's server and handler
    server.set_app(WSGIHandler())  # the project's application, without django.setup() again
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with urllib.request.urlopen(f"{base}/test/hello", timeout=10) as response:
            assert response.read() == b"hello"
        with pytest.raises(urllib.error.HTTPError) as not_found:
            urllib.request.urlopen(f"{base}/test/nothing-here", timeout=10)
        assert not_found.value.code == 404
    finally:
        server.shutdown()  # returns once the request being served (and logged) is done
        server.server_close()
        serving.join(timeout=10)

    text = output.text()
    assert [line.event for line in parsed(output, text)] == ["GET /test/hello 200", "GET /test/nothing-here 404"], text


@pytest.mark.django_db
def test_a_failed_attempt_is_a_warning_with_its_error_and_every_line_names_the_saga(output, api, customer):
    request_id = str(uuid.uuid4())
    body = {"customer_id": str(customer.pk), "amount": "10.00"}
    order = api.post("/api/orders", body, format="json", HTTP_X_REQUEST_ID=request_id).json()
    harness = SagaHarness(PLACE_ORDER)
    harness.raise_in("authorize_payment", times=1)
    output.text()
    harness.run(uuid.UUID(order["saga_id"]))
    lines = parsed(output, output.text())

    events = [(line.level, line.event.split(" in ")[0]) for line in lines]
    assert events == RETRIED_ONCE_THEN_COMPLETED, events
    [failure] = [line for line in lines if line.level == "warning"]
    assert "InjectedError: injected into authorize_payment" in failure.event
    for line in lines:
        ids = {name: line.fields.get(name) for name in IDS}
        assert (ids["saga_id"], ids["order_id"], ids["request_id"]) == (order["saga_id"], order["id"], request_id)
        assert ids["step"] and ids["attempt"], (line.event, ids)
    # an attempt's line names that step and that attempt
    for line in lines[:-1]:
        words = line.event.split()
        assert (line.fields["step"], line.fields["attempt"]) == (words[1], words[3].rstrip(":")), line
