"""The inventory context as a saga participant: its stock commands, served in the worker or, when
inventory is remote, by `run_participant inventory`. Steps call them as `inventory.reserve(s, ...)`."""

from saga.services import Participant

from . import services
from .messages import CommitStock, ReleaseStock, ReserveStock, StockReply


def _reserve(command: ReserveStock) -> StockReply:
    return services.stock_reserve(order_id=command.order_id, lines=command.lines)


def _release(command: ReleaseStock) -> StockReply:
    return services.stock_release(order_id=command.order_id)


def _commit(command: CommitStock) -> StockReply:
    return services.stock_commit(order_id=command.order_id)


INVENTORY = Participant(name="inventory", context="inventory")
reserve = INVENTORY.command(ReserveStock, StockReply, _reserve)
release = INVENTORY.command(ReleaseStock, StockReply, _release)
commit = INVENTORY.command(CommitStock, StockReply, _commit)
