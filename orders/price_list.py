"""The orders context's price list, kept from inventory's product events (on inventory_events,
keyed by the product id, delivered at least once, and read by `consume_events` in the services
topology only: in the monolith orders reads inventory's table, in the same database).

Each handler runs once per message id (the inbox); a product's `version` makes a late or
replayed created/updated event change nothing, and a deletion stays a deletion."""

from decimal import Decimal, InvalidOperation

from saga.messaging import Envelope, MalformedMessage, message_handler_register

from . import services
from .selectors import PricedProduct


def on_product_told(message: Envelope) -> None:
    """`product.created` / `product.updated` {id, sku, price, version, ...}."""
    product = PricedProduct(id=message.uuid_field("id"), sku=_text(message, "sku"), price=_price(message))
    services.product_price_keep(product=product, version=_version(message), event_id=message.id)


def on_product_deleted(message: Envelope) -> None:
    """`product.deleted` {id}."""
    services.product_price_delete(product_id=message.uuid_field("id"), event_id=message.id)


HANDLERS = {
    "product.created": (on_product_told, "id, sku, price, version"),
    "product.updated": (on_product_told, "id, sku, price, version"),
    "product.deleted": (on_product_deleted, "id"),
}


def price_list_keep() -> None:
    """Read inventory's product events into the price list (AppConfig.ready, services topology)."""
    for type, (handler, payload) in HANDLERS.items():
        message_handler_register(context="inventory", type=type, handler=handler, payload=payload)


def _text(message: Envelope, name: str) -> str:
    value = message.field(name)
    if not isinstance(value, str) or not value:
        raise MalformedMessage(f"{message.type}: {name} is not a non-empty string")
    return value


def _price(message: Envelope) -> Decimal:
    try:
        price = Decimal(str(message.field("price")))
    except InvalidOperation:
        raise MalformedMessage(f"{message.type}: price is not a decimal") from None
    if not price.is_finite() or price < 0:
        raise MalformedMessage(f"{message.type}: price {price} is not a price")
    return price.quantize(Decimal("0.01"))


def _version(message: Envelope) -> int:
    version = message.field("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise MalformedMessage(
            f"{message.type}: version {version!r} is not a positive integer (an event sent before products had "
            "versions: fill the price list with `manage.py announce_products` on inventory's side)"
        )
    return version
