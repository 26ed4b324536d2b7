"""Every page of the admin opens without a server error, for a superuser and for a staff user
without any permission: the list, the add form, each row's page, its delete confirmation and
history, and every view a ModelAdmin adds (the saga's operator forms, the dead letters' ones), with
rows of every registered model in place. The pages come from the admin's registry and its URL
patterns, so a model registered tomorrow is crawled without touching this test."""

import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model
from django.urls import URLPattern, URLResolver, reverse
from rest_framework.authtoken.models import Token

from saga import services
from saga.messaging.inbox import consume
from saga.models import DeadLetter, ProcessedCommand
from saga.operator import admin as saga_admin

from .conftest import client_for, user_with

ROWS_PER_MODEL = 6  # enough for one saga of each state the `sagas` fixture makes
# Values of the URL parameters that are not a row's id. A new kind of parameter fails the crawl
# (see `values_of`) until it is taught here.
WORDS = {"action": [*saga_admin.ACTIONS, *saga_admin.DEAD_LETTER_ACTIONS]}
SITE_WORDS = {"app_label": sorted({model._meta.app_label for model in admin.site._registry})}


def rows_of(model: type[Model]) -> list[Model]:
    return list(model._default_manager.all()[:ROWS_PER_MODEL])


def values_of(parameter: str, model: type[Model]) -> list[str]:
    """What to put in the URL for `parameter`: a word it takes, or the id of each row of `model`."""
    if parameter in WORDS:
        return list(WORDS[parameter])
    assert parameter.endswith("id"), f"the crawl knows no values for URL parameter {parameter!r}: add them to WORDS"
    return [str(row.pk) for row in rows_of(model)]


def fill(pattern: URLPattern, values: dict[str, list[str]]) -> Iterator[dict[str, str]]:
    """Every combination of values for the pattern's parameters."""
    combinations: list[dict[str, str]] = [{}]
    for parameter in pattern.pattern.regex.groupindex:
        combinations = [{**done, parameter: value} for done in combinations for value in values[parameter]]
    yield from combinations


def model_pages() -> Iterator[str]:
    for model, model_admin in admin.site._registry.items():
        for pattern in model_admin.get_urls():
            if not isinstance(pattern, URLPattern) or pattern.name is None:
                continue  # the unnamed one only redirects an old URL to the change page
            parameters = pattern.pattern.regex.groupindex
            values = {parameter: values_of(parameter, model) for parameter in parameters}
            for kwargs in fill(pattern, values):
                yield reverse(f"admin:{pattern.name}", kwargs=kwargs)


def site_pages() -> Iterator[str]:
    """The admin site's own pages: the index (the dashboard), each app's index, "view on site"."""
    for pattern in admin.site.get_urls():
        if isinstance(pattern, URLResolver) or pattern.name is None:
            continue  # a model's pages, crawled above; the catch-all
        if pattern.name == "view_on_site":
            for model in admin.site._registry:
                content_type = ContentType.objects.get_for_model(model, for_concrete_model=False)
                for row in rows_of(model):
                    yield reverse("admin:view_on_site", args=[content_type.pk, row.pk])
            continue
        for kwargs in fill(pattern, SITE_WORDS):
            yield reverse(f"admin:{pattern.name}", kwargs=kwargs)


@pytest.fixture
def every_model_has_rows(sagas, dead_letter, superuser):
    """The `sagas` fixture places real orders and runs their sagas (steps, outbox, holds,
    reservations, payments); the rest is added here: a group, a token, an inbox message, a
    command served to a remote participant, an operator's action, a dead letter set aside."""
    Group.objects.create(name="operators")
    Token.objects.create(user=superuser)
    late = {"id": str(uuid.uuid4()), "type": "fulfillment.accepted", "payload": {"order_id": ""}}
    late["payload"]["order_id"] = str(sagas["completed"].aggregate_id)  # long done: kept in the inbox, no effect
    assert consume("fulfillment_events", json.dumps(late).encode()) == "processed"
    ProcessedCommand.objects.create(
        command_id=uuid.uuid4(), participant="inventory", command="inventory.reserve", result={"reserved": True}
    )
    discarded = DeadLetter.objects.create(topic="fulfillment_events", partition=0, offset=9, value="{}", error="x")
    services.dead_letter_discard(dead_letter_id=discarded.pk, by=superuser, comment="a test sets it aside")
    empty = [model._meta.label for model in admin.site._registry if not model._default_manager.exists()]
    assert not empty, f"make a row of {empty} here, so that their pages are crawled"


@pytest.mark.parametrize("who", ["superuser", "staff without permissions"])
def test_no_admin_page_answers_a_server_error(every_model_has_rows, superuser, who, caplog):
    user = superuser if who == "superuser" else user_with("nobody")
    client = client_for(user)
    client.raise_request_exception = False  # every page is opened; the failures are listed together
    # Each refusal (403) and error is logged with its traceback, which takes seconds a page; the
    # failures below carry their exception instead.
    caplog.set_level(logging.CRITICAL, logger="django.request")
    pages = [*model_pages(), *site_pages()]
    failed = []
    for page in pages:
        response = client.get(page)
        if response.status_code >= 500:
            failed.append((page, response.status_code, repr(response.exc_info and response.exc_info[1])))
    assert len(pages) > 100 and not failed, failed
