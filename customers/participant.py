"""The customers context as a saga participant: its funds commands, served in the worker or, when
customers is remote, by `run_participant customers`. Steps call them as `customers.hold(s, ...)`."""

from saga.services import Participant

from . import services
from .messages import ConsumeFunds, FundsReply, HoldFunds, ReleaseFunds


def _hold(command: HoldFunds) -> FundsReply:
    return services.funds_hold(order_id=command.order_id, customer_id=command.customer_id, amount=command.amount)


def _release(command: ReleaseFunds) -> FundsReply:
    return services.funds_release(order_id=command.order_id)


def _consume(command: ConsumeFunds) -> FundsReply:
    return services.funds_consume(order_id=command.order_id)


CUSTOMERS = Participant(name="customers", context="customer")
hold = CUSTOMERS.command(HoldFunds, FundsReply, _hold)
release = CUSTOMERS.command(ReleaseFunds, FundsReply, _release)
consume = CUSTOMERS.command(ConsumeFunds, FundsReply, _consume)
