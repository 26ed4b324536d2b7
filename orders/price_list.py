"""The orders context's price list, kept from inventory's product events (on inventory_events,
keyed by the product id, delivered at least once, and read by `consume_events` in the services
topology only: in the monolith orders reads inventory's table, in the same database).

Each handler runs once per message id (the inbox); a product's `version` makes a late or
replayed created/updated event change nothing, and a deletion stays a deletion."""

from decimal import Decimal

from inventory.messages import ProductCreated, ProductDeleted, ProductEvent, ProductUpdated
from saga.messaging import Envelope, Handler, MalformedMessage, Message, message_handler_register

from . import services
from .selectors import PricedProduct

CENT = Decimal("0.01")


def on_product_told(message: Envelope) -> None:
    """`product.created` / `product.updated`: its sku and price, at its version."""
    told = message.message(ProductEvent)  # created and updated carry the same fields
    _check(message, told)
    product = PricedProduct(id=told.id, sku=told.sku, price=told.price.quantize(CENT))
    services.product_price_keep(product=product, version=told.version, event_id=message.id)


def on_product_deleted(message: Envelope) -> None:
    services.product_price_delete(product_id=message.message(ProductDeleted).id, event_id=message.id)


HANDLERS: dict[type[Message], Handler] = {
    ProductCreated: on_product_told,
    ProductUpdated: on_product_told,
    ProductDeleted: on_product_deleted,
}


def price_list_keep() -> None:
    """Read inventory's product events into the price list (AppConfig.ready, services topology)."""
    for message, handler in HANDLERS.items():
        message_handler_register(context="inventory", message=message, handler=handler)


def _check(message: Envelope, told: ProductEvent) -> None:
    """What the types do not say: a sku, a price, a version from 1 on."""
    if not told.sku:
        raise MalformedMessage(f"{message.type}: sku is empty")
    if not told.price.is_finite() or told.price < 0:
        raise MalformedMessage(f"{message.type}: price {told.price} is not a price")
    if told.version < 1:
        raise MalformedMessage(f"{message.type}: version {told.version} is not a positive integer")
