import os
import subprocess
import sys
import uuid
from decimal import Decimal
from typing import ClassVar

import pytest
from django.test import override_settings

from payments import selectors, services
from payments.gateway import Authorization, SandboxGateway
from payments.models import Payment


class CountingGateway(SandboxGateway):
    calls: ClassVar[list[str]] = []  # the gateway is built from settings: the test reads the class's record

    def authorize(self, *, order_id, amount, idempotency_key):
        CountingGateway.calls.append(f"authorize {idempotency_key}")
        return super().authorize(order_id=order_id, amount=amount, idempotency_key=idempotency_key)

    def capture(self, *, reference, idempotency_key):
        CountingGateway.calls.append(f"capture {idempotency_key}")


class DecliningGateway(SandboxGateway):
    def authorize(self, *, order_id, amount, idempotency_key):
        return Authorization(approved=False, decline_reason="CARD_EXPIRED")


@pytest.fixture
def counting():
    CountingGateway.calls = []
    with override_settings(PAYMENTS_GATEWAY="tests.contexts.test_payments.CountingGateway"):
        yield CountingGateway.calls


def test_authorize_and_capture_call_the_provider_once_each(db, counting):
    order_id = uuid.uuid4()
    for _ in range(2):
        assert services.payment_authorize(
            order_id=order_id, customer_id=uuid.uuid4(), amount=Decimal("9.99")
        ).authorized
    for _ in range(2):
        services.payment_capture(order_id=order_id)
    assert counting == [f"authorize {order_id}:authorize", f"capture {order_id}:capture"]
    assert selectors.payment_get(order_id=order_id).status == Payment.Status.CAPTURED


@override_settings(PAYMENTS_GATEWAY="tests.contexts.test_payments.DecliningGateway")
def test_a_declined_authorization_is_remembered_and_cannot_be_captured(db):
    order_id = uuid.uuid4()
    result = services.payment_authorize(order_id=order_id, customer_id=uuid.uuid4(), amount=Decimal("5.00"))
    assert (result.authorized, result.reason) == (False, "CARD_EXPIRED")
    with pytest.raises(services.PaymentNotAuthorized):
        services.payment_capture(order_id=order_id)


def test_void_after_authorize_and_void_before_authorize(db):
    order_id, early = uuid.uuid4(), uuid.uuid4()
    services.payment_authorize(order_id=order_id, customer_id=uuid.uuid4(), amount=Decimal("5.00"))
    assert services.payment_void(order_id=order_id).status == Payment.Status.VOIDED
    services.payment_void(order_id=early)
    late = services.payment_authorize(order_id=early, customer_id=uuid.uuid4(), amount=Decimal("5.00"))
    assert not late.authorized


def test_the_gateway_is_chosen_by_the_environment_as_the_readme_says():
    """README's configuration table: PAYMENTS_GATEWAY (a dotted path) selects the provider's adapter."""
    code = "import django; django.setup(); from payments.gateway import gateway; print(type(gateway()).__name__)"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "shop.settings"}
    chosen = {"PAYMENTS_GATEWAY": "tests.contexts.test_payments.DecliningGateway"}

    def gateway_in(extra: dict) -> str:
        run = subprocess.run([sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True)
        return run.stdout.strip() or run.stderr[-500:]

    assert (gateway_in({}), gateway_in(chosen)) == ("SandboxGateway", "DecliningGateway")


def test_the_sandbox_keeps_its_latest_calls_not_every_call_since_the_worker_started():
    """A worker runs for months: what the sandbox remembers must not grow with every order."""
    sandbox = SandboxGateway()
    first = uuid.uuid4()
    sandbox.authorize(order_id=first, amount=Decimal("1.00"), idempotency_key=f"{first}:authorize")
    for _ in range(SandboxGateway.KEPT_CALLS):
        order_id = uuid.uuid4()
        sandbox.void(order_id=order_id, authorization_key=f"{order_id}:authorize", idempotency_key=f"{order_id}:void")

    assert len(SandboxGateway.calls) == SandboxGateway.KEPT_CALLS
    assert ("authorize", first) not in SandboxGateway.calls
    assert SandboxGateway.calls[-1] == ("void", order_id)
