"""The operator commands and the engine's admin in the minimal project, which has nothing of the
shop: each action checks its permission, leaves its audit row and acts once per request key; the
admin shows a toy order's saga (timeline, diagram, buttons) with no link the project did not register."""

import json
import re
import sys
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import clear_url_caches, path

from saga import services
from saga.messaging.inbox import consume
from saga.models import DeadLetter, InboxMessage, OperatorAction, SagaInstance, SagaStatus, SagaStep
from saga.operator.display import SAGA_COLORS

from .conftest import order_data


def operator(*codenames: str):
    user = get_user_model().objects.create_user(f"op-{uuid.uuid4().hex[:6]}", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="saga", codename__in=codenames))
    return get_user_model().objects.get(pk=user.pk)  # permissions are cached per instance


@pytest.fixture
def failed(harness, toys) -> SagaInstance:
    """A toy order whose release kept failing: FAILED while rolling back."""
    harness.refuse_in("reserve_toys", "NO")
    harness.raise_in("reserve_toys", RuntimeError("undo down"), times=10, kind="compensation")
    saga = harness.run(harness.start(data=order_data(uuid.uuid4())))
    assert saga.status == SagaStatus.FAILED
    return saga


def test_each_action_leaves_its_audit_row_and_acts_once_per_key(failed, harness):
    user = operator("change_sagainstance")
    first = services.saga_retry(saga_id=failed.pk, by=user, comment="undo is back", key="k1", runtime=harness.runtime)
    again = services.saga_retry(saga_id=failed.pk, by=user, comment="undo is back", key="k1", runtime=harness.runtime)
    assert first.pk == again.pk and OperatorAction.objects.count() == 1
    assert (first.action, first.username, first.status_before, first.status_after) == (
        "retry",
        user.username,
        "FAILED",
        "COMPENSATING",
    )
    assert harness.run(failed.pk).status == SagaStatus.COMPENSATED
    with pytest.raises(services.SagaStateConflict):
        services.saga_compensate(saga_id=failed.pk, by=user, comment="roll back", runtime=harness.runtime)
    refused = OperatorAction.objects.latest("id")
    assert (refused.action, refused.outcome) == ("compensate", "refused")


def test_resolve_keeps_the_status_and_is_idempotent(failed, harness):
    done = services.saga_resolve(saga_id=failed.pk, comment="released by hand", runtime=harness.runtime)
    repeat = services.saga_resolve(saga_id=failed.pk, comment="released by hand", runtime=harness.runtime)
    assert (done.outcome, repeat.outcome, done.username) == ("done", "nothing", "")
    saga = SagaInstance.objects.get(pk=failed.pk)
    assert saga.status == SagaStatus.FAILED and saga.resolved_at is not None
    assert services.saga_replay(saga_id=failed.pk).action == "nothing"
    with pytest.raises(ValueError, match="comment is required"):
        services.saga_resolve(saga_id=failed.pk, comment=" ")


def test_rewind_goes_back_to_a_step_reached(harness, toys):
    saga_id = harness.start(data=order_data(uuid.uuid4(), delivery=True))
    assert harness.run(saga_id).status == SagaStatus.WAITING
    record = services.saga_rewind(saga_id=saga_id, step="reserve_toys", comment="again", runtime=harness.runtime)
    assert (record.step, record.outcome) == ("reserve_toys", "done")
    assert SagaInstance.objects.get(pk=saga_id).current_step == "reserve_toys"
    assert harness.run(saga_id).status == SagaStatus.WAITING  # the toy box reserved once: nothing twice


def test_an_operators_compensate_rolls_back_with_the_definitions_operator_reason(harness, toys):
    """Neither the wait's timeout reason nor a step's failure reason: the operator decided."""
    saga_id = harness.start(data=order_data(uuid.uuid4(), delivery=True))
    assert harness.run(saga_id).status == SagaStatus.WAITING
    services.saga_compensate(saga_id=saga_id, comment="no courier today", runtime=harness.runtime)
    saga = harness.run(saga_id)
    assert (saga.status, saga.reason) == (SagaStatus.COMPENSATED, harness.definition.operator_reason)
    assert saga.reason == "COMPENSATED_BY_OPERATOR"  # the engine's default


def test_no_action_without_the_permission(failed, harness):
    viewer = operator("view_sagainstance", "view_deadletter")
    with pytest.raises(PermissionDenied):
        services.saga_retry(saga_id=failed.pk, by=viewer, comment="x", runtime=harness.runtime)
    letter = DeadLetter.objects.create(topic="courier_events", partition=0, offset=1, value="{}", error="x")
    with pytest.raises(PermissionDenied):
        services.dead_letter_replay(dead_letter_id=letter.pk, by=viewer)
    assert not OperatorAction.objects.exists() and SagaInstance.objects.get(pk=failed.pk).status == "FAILED"


def test_a_dead_letter_replays_through_the_inbox_once(harness, toys):
    order_id = uuid.uuid4()
    saga_id = harness.start(data=order_data(order_id, delivery=True), aggregate_id=order_id)
    harness.run(saga_id)
    message = {"id": str(uuid.uuid4()), "type": "courier.booked", "payload": {"order_id": str(order_id)}}
    letter = DeadLetter.objects.create(
        topic="courier_events", partition=0, offset=3, value=json.dumps(message), error="was down"
    )
    record = services.dead_letter_replay(dead_letter_id=letter.pk, comment="handler fixed")
    assert (record.outcome, record.detail) == ("done", "processed")
    assert InboxMessage.objects.filter(id=message["id"], correlation_id=None).count() == 1
    assert services.dead_letter_replay(dead_letter_id=letter.pk).outcome == "nothing"
    assert consume("courier_events", json.dumps(message).encode()) == "duplicate"


def test_every_status_of_a_saga_and_of_a_step_has_its_color():
    """The engine's palette (saga/operator/display.py) colors its own statuses, and only those."""
    assert set(SAGA_COLORS) == {*SagaStatus.values, *SagaStep.Status.values}


# --- the admin, in a project that installs it beside the engine ------------------------------

ADMIN_APPS = ["django.contrib.admin", "django.contrib.sessions", "django.contrib.messages"]
urlpatterns: list = []


@pytest.fixture
def admin_client(db, settings, failed):
    from django.apps import apps

    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, *ADMIN_APPS]
    settings.ROOT_URLCONF = __name__
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    settings.MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"
    settings.MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ]
    settings.TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                ]
            },
        }
    ]
    settings.STATIC_URL = "/static/"
    from django.contrib import admin

    admin.autodiscover()
    sys.modules[__name__].urlpatterns = [path("admin/", admin.site.urls)]
    clear_url_caches()
    client = Client()
    client.force_login(operator("view_sagainstance", "change_sagainstance"))
    yield client
    sys.modules[__name__].urlpatterns = []
    clear_url_caches()
    assert apps.is_installed("saga")


def test_the_saga_admin_works_without_the_shop(admin_client, failed):
    listing = admin_client.get("/admin/saga/sagainstance/")
    assert listing.status_code == 200 and str(failed.pk)[:8].encode() in listing.content
    page = admin_client.get(f"/admin/saga/sagainstance/{failed.pk}/change/").content.decode()
    assert 'id="saga-timeline"' in page and "<svg xmlns" in page and 'data-action="retry"' in page
    assert f"<code>{failed.aggregate_id}</code>" in page  # no link: the project registered none
    url = f"/admin/saga/sagainstance/{failed.pk}/operate/resolve/"
    token = re.search(r'name="token" value="([0-9a-f]+)"', admin_client.get(url).content.decode()).group(1)
    assert admin_client.post(url, {"token": token, "comment": "fixed"}).status_code == 302
    assert OperatorAction.objects.get().comment == "fixed"
