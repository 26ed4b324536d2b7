"""Commands of the customers context: accounts and the funds held for orders.

Every funds command is idempotent per order: the `FundsHold` row of the order records what was
done, so a second call returns the first call's result and changes nothing. The customer row is
locked before its funds change, so concurrent holds can never over-commit a balance (and the
CHECK constraints in the database stand behind that).
"""

from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db.models import F

from common.crud import model_delete, model_save, model_update
from common.databases import atomic_for, database_for
from saga.messaging import message_payload, publish
from saga.orchestration.records import participant_command, record_create, record_locked_or_tombstone, record_move

from .messages import CustomerCreated, CustomerDeleted, CustomerEvent, CustomerUpdated, FundsReply
from .models import Customer, FundsHold

UNKNOWN_CUSTOMER = "UNKNOWN_CUSTOMER"
INSUFFICIENT_CREDIT = "INSUFFICIENT_CREDIT"
CUSTOMER_BLOCKED = "CUSTOMER_BLOCKED"

_EDITABLE = {"name", "email", "balance", "blocked"}


class FundsNotHeld(Exception):
    """Consuming funds that were never held (or were released): a saga bug, never a refusal."""


@atomic_for(Customer)
def customer_create(*, name: str, balance: Decimal, email: str = "", blocked: bool = False) -> Customer:
    customer = Customer(name=name, email=email, balance=balance, blocked=blocked)
    return _announced(CustomerCreated, model_save(customer))


@atomic_for(Customer)
def customer_update(*, customer_id: UUID, data: dict[str, Any]) -> Customer:
    customer = Customer.objects.select_for_update().get(pk=customer_id)
    updated = model_update(customer, data=data, fields=_EDITABLE)
    return _announced(CustomerUpdated, updated)


@atomic_for(Customer)
def customer_delete(*, customer_id: UUID) -> None:
    """Raises StillReferenced when orders hold or held funds of this customer."""
    model_delete(Customer.objects.get(pk=customer_id))
    _publish(CustomerDeleted(id=customer_id), key=customer_id)


@participant_command
def funds_hold(*, order_id: UUID, customer_id: UUID, amount: Decimal) -> FundsReply:
    customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
    existing = FundsHold.objects.filter(pk=order_id).first()
    if existing is not None:
        return _result(existing)
    if customer is None:
        return _record(order_id, None, amount, FundsHold.Status.REFUSED, UNKNOWN_CUSTOMER)
    if customer.blocked:
        return _record(order_id, customer, amount, FundsHold.Status.REFUSED, CUSTOMER_BLOCKED)
    if customer.available < amount:
        return _record(order_id, customer, amount, FundsHold.Status.REFUSED, INSUFFICIENT_CREDIT)
    Customer.objects.filter(pk=customer.pk).update(reserved=F("reserved") + amount)
    return _record(order_id, customer, amount, FundsHold.Status.HELD)


@participant_command
def funds_release(*, order_id: UUID) -> FundsReply:
    """Compensation of funds_hold. Releasing an unknown order leaves a tombstone, so a hold
    that arrives late (reordered delivery) is refused instead of holding funds forever."""
    hold = record_locked_or_tombstone(FundsHold, pk=order_id, tombstone=FundsHold.Status.RELEASED, amount=Decimal("0"))
    if hold.status == FundsHold.Status.HELD:
        assert hold.customer_id is not None  # only a hold refused for an unknown customer has none
        Customer.objects.filter(pk=hold.customer_id).update(reserved=F("reserved") - hold.amount)
        record_move(hold, FundsHold.Status.RELEASED)
    return _result(hold)


@participant_command
def funds_consume(*, order_id: UUID) -> FundsReply:
    """The held funds leave the customer's balance (the capture of a confirmed order)."""
    hold = FundsHold.objects.select_for_update().filter(pk=order_id).first()
    if hold is None or hold.status not in (FundsHold.Status.HELD, FundsHold.Status.CONSUMED):
        raise FundsNotHeld(f"order {order_id} has no funds held")
    if hold.status == FundsHold.Status.HELD:
        assert hold.customer_id is not None  # only a hold refused for an unknown customer has none
        Customer.objects.filter(pk=hold.customer_id).update(
            balance=F("balance") - hold.amount, reserved=F("reserved") - hold.amount
        )
        record_move(hold, FundsHold.Status.CONSUMED)
    return _result(hold)


def _record(order_id: UUID, customer: Customer | None, amount: Decimal, status: str, reason: str = "") -> FundsReply:
    return _result(
        record_create(FundsHold, pk=order_id, status=status, customer=customer, amount=amount, reason=reason)
    )


def _announced(event: type[CustomerEvent], customer: Customer) -> Customer:
    fields = (customer.pk, customer.name, customer.email, customer.balance, customer.blocked)
    _publish(event(*fields), key=customer.pk)
    return customer


def _result(hold: FundsHold) -> FundsReply:
    return FundsReply(status=hold.status, reason=hold.reason)


def _publish(event: CustomerEvent | CustomerDeleted, *, key: UUID) -> None:
    """Announce in the customers' database, the transaction of the rows the event announces."""
    publish(type=event.TYPE, key=key, payload=message_payload(event), using=database_for(Customer))
